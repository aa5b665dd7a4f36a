-- end_contact: an active contact is over (agent or system). The agent's slot goes to
-- wrap-up for the queue's wrap_up_s, or frees at once. Retrying returns the ended contact.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, agent?, reason, disposition?}
-- Returns r = contact view | errors contact_not_found, contact_not_active,
--   contact_finished, not_your_contact | need.
local c = load_contact(A.id)
if not c then return fail('contact_not_found', 'no contact ' .. A.id) end
if c.st == 'ended' and (not A.agent or c.la == A.agent) then return ok(contact_view(c)) end
if is_final(c) then return fail('contact_finished', 'contact ' .. A.id .. ' is already ' .. c.st) end
if c.st ~= 'active' then return fail('contact_not_active', 'contact ' .. A.id .. ' is ' .. c.st .. ', not active') end
if A.agent and c.ag ~= A.agent then return fail('not_your_contact', 'contact ' .. A.id .. ' belongs to another agent') end
local a = load_agent(c.ag)
local ids = agent_queue_ids(a)
ids[#ids + 1] = c.q
local need = require_queues(ids)
if need then return need end
finish_active(c, a, A.reason, A.disposition or cjson.null)
return ok(contact_view(load_contact(c.id)))
