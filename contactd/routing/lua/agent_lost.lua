-- agent_lost: the agent's heartbeat lease ran out (expired=true: checked again here, a
-- late heartbeat wins) or the node decided so. Their offers and active contacts go back to
-- the head of their queues, wrap-ups are dropped, the agent is offline with the reason.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {agent, reason, expired}
-- Returns r = {lost: bool, requeued_queues: n} | need.
local a = load_agent(A.agent)
if not a or a.st == 'offline' then
  redis.call('ZREM', K_HB, A.agent)
  return ok({ lost = false })
end
if A.expired and (a.hbd or 0) > NOW then return ok({ lost = false }) end
local need = require_queues(agent_queue_ids(a))
if need then return need end
emit('agent.lost', { agent_id = a.id, reason = A.reason })
local n = lose_agent(a, A.reason)
return ok({ lost = true, requeued_queues = n })
