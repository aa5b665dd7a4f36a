-- agent_login: an agent signs in to routing (or updates queues/capacity) in a state
-- (available or away); the heartbeat lease starts; available agents get work at once.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {agent, queues, cap, state, reason, ttl}
-- Returns r = agent view | need.
local a = load_agent(A.agent)
local ids = {}
for _, qid in ipairs(A.queues) do ids[#ids + 1] = qid end
if a then
  for _, qid in ipairs(agent_queue_ids(a)) do ids[#ids + 1] = qid end
else
  designated_queue_ids(A.agent, ids) -- contacts already waiting for this agent by name
end
local need = require_queues(ids)
if need then return need end
local old_member, old_queues = nil, {}
if a then
  old_member = member_of(a)
  old_queues = a.q
else
  a = { id = A.agent, st = 'offline', rsn = '', since = NOW, ct = {}, le = NOW, miss = 0 }
end
if a.st == 'offline' then
  a.le = NOW
  a.miss = 0
  emit('agent.logged_in', { agent_id = a.id, queues = A.queues })
end
a.q = A.queues
a.cap = A.cap
a.hbd = NOW + A.ttl
redis.call('ZADD', K_HB, a.hbd, a.id)
set_agent_state(a, A.state, A.reason)
save_agent(a)
refresh_agent(a, old_member, old_queues)
dispatch_agent(a.id)
return ok(agent_view(load_agent(a.id)))
