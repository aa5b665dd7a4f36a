-- agent_state: available / away(reason) / offline (= log out: everything the agent held is
-- put back at the head of its queue). Available while in wrap-up ends all wrap-up.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {agent, state, reason}
-- Returns r = agent view | errors agent_not_found, agent_offline | need.
local a = load_agent(A.agent)
if not a then return fail('agent_not_found', 'agent ' .. A.agent .. ' has never logged in') end
if a.st == 'offline' and A.state ~= 'offline' then
  return fail('agent_offline', 'agent ' .. A.agent .. ' is offline: log in first')
end
local need = require_queues(agent_queue_ids(a))
if need then return need end
if A.state == 'offline' then
  if a.st ~= 'offline' then lose_agent(a, A.reason ~= '' and A.reason or 'logout') end
  return ok(agent_view(load_agent(a.id)))
end
local old = member_of(a)
if A.state == 'available' then
  for cid, slot in pairs(a.ct) do
    if slot.s == 'wrap' then
      free_slot(a, cid)
      emit('wrap_up.ended', { contact_id = cid, agent_id = a.id, expired = false })
    end
  end
  a.miss = 0
end
set_agent_state(a, A.state, A.reason)
save_agent(a)
refresh_agent(a, old)
dispatch_agent(a.id)
return ok(agent_view(load_agent(a.id)))
