-- cancel: the customer left. Queued → abandoned; offered → the offer is revoked at once and
-- the contact abandoned; active → ended with the given reason. Final contacts: no change.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, reason}
-- Returns r = contact view | error contact_not_found | {"need": [...]}.
local c = load_contact(A.id)
if not c then return fail('contact_not_found', 'no contact ' .. A.id) end
if is_final(c) then return ok(contact_view(c)) end
local ids = { c.q }
local a = c.ag and load_agent(c.ag) or nil
if a then for _, qid in ipairs(agent_queue_ids(a)) do ids[#ids + 1] = qid end end
local need = require_queues(ids)
if need then return need end

if c.st == 'active' then
  finish_active(c, a, A.reason, cjson.null)
  return ok(contact_view(load_contact(c.id)))
end
local was = c.st
if was == 'queued' then
  drop_from_waiting(c)
elseif a then
  emit('offer.revoked', {
    offer_id = c.of, contact_id = c.id, agent_id = a.id, queue_id = c.q, reason = A.reason,
  })
  release_slot(a, c.id)
end
emit('contact.abandoned', {
  contact_id = c.id, queue_id = c.q, reason = A.reason, waited_ms = NOW - c.t0, was = was,
})
finalize(c, 'abandoned', A.reason)
if a then
  save_agent(a)
  refresh_agent(a, nil)
  dispatch_agent(a.id)
end
return ok(contact_view(c))
