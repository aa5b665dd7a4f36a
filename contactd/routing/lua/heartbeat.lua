-- heartbeat: extend the agent's lease to now + ttl (also used to start the disconnect
-- grace period with a short ttl). An offline agent must log in again.
-- KEYS, ARGV[1,2,4]: see _lib.lua (no queue keys).  ARGV[3]: {agent, ttl}
-- Returns r = {deadline} | errors agent_not_found, agent_offline.
local a = load_agent(A.agent)
if not a then return fail('agent_not_found', 'agent ' .. A.agent .. ' has never logged in') end
if a.st == 'offline' then return fail('agent_offline', 'agent ' .. A.agent .. ' is offline: log in again') end
a.hbd = NOW + A.ttl
redis.call('ZADD', K_HB, a.hbd, a.id)
save_agent(a)
return ok({ deadline = a.hbd })
