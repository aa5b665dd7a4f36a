-- complete_wrap: wrap-up of one ended contact is over (agent says so, or expired=true from
-- the sweeper). The slot frees; an agent in wrap_up with no wrap left becomes available.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, agent?, expired}
-- Returns r = {done: bool} | errors contact_not_found, not_your_contact | need.
local c = load_contact(A.id)
if not c then
  redis.call('ZREM', K_WRAPS, A.id)
  return fail('contact_not_found', 'no contact ' .. A.id)
end
local aid = c.la
if A.agent and aid ~= A.agent then return fail('not_your_contact', 'contact ' .. A.id .. ' belongs to another agent') end
local a = aid and load_agent(aid) or nil
if not a or not a.ct[c.id] or a.ct[c.id].s ~= 'wrap' then
  redis.call('ZREM', K_WRAPS, c.id)
  return ok({ done = false })
end
if A.expired then
  local due = tonumber(redis.call('ZSCORE', K_WRAPS, c.id) or '0')
  if due > NOW then return ok({ done = false }) end
end
local need = require_queues(agent_queue_ids(a))
if need then return need end
local old = member_of(a)
free_slot(a, c.id)
local wraps_left = false
for _, slot in pairs(a.ct) do
  if slot.s == 'wrap' then wraps_left = true end
end
emit('wrap_up.ended', { contact_id = c.id, agent_id = a.id, expired = A.expired and true or false })
if a.st == 'wrap_up' and not wraps_left then set_agent_state(a, 'available', '') end
save_agent(a)
refresh_agent(a, old)
dispatch_agent(a.id)
return ok({ done = true })
