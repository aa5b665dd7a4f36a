-- agent_drain: a supervisor drains an agent: they finish what they hold (offers, contacts,
-- wrap-up) and take nothing new (state away, reason "draining"); when the last piece of
-- work is done they go offline (reason "drained", see save_agent). An agent holding
-- nothing goes offline at once. Setting them available again ends the drain.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {agent}
-- Returns r = agent view | errors agent_not_found, agent_offline | need.
local a = load_agent(A.agent)
if not a then return fail('agent_not_found', 'agent ' .. A.agent .. ' has never logged in') end
if a.st == 'offline' then return fail('agent_offline', 'agent ' .. A.agent .. ' is offline') end
local need = require_queues(agent_queue_ids(a))
if need then return need end
local old = member_of(a)
set_agent_state(a, 'away', 'draining')
a.dr = true
save_agent(a)
refresh_agent(a, old)
return ok(agent_view(load_agent(a.id)))
