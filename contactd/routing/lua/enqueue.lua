-- enqueue: a contact arrives in a queue; it is refused at the cap, otherwise queued and
-- dispatched at once. Retrying with the same contact id changes nothing.
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {id, q, p, tgt?, fb?, meta?}
-- fb: how long (ms) this contact waits for tgt before joining its queue, instead of the
-- queue's fallback_after_s (a returning customer's last agent: a short wait).
-- Returns r = contact view (+ position, existing) | errors unknown_queue, queue_full,
--   contact_exists, designated_target_required.
local existing = load_contact(A.id)
local need = require_queues(existing and { A.q, existing.q } or { A.q })
if need then return need end
local q = Q[A.q]
if q.cfg.removed then return fail('unknown_queue', 'queue ' .. A.q .. ' is not configured') end

if existing then
  if existing.q0 ~= A.q then
    return fail('contact_exists', 'contact ' .. A.id .. ' already exists in another queue')
  end
  local v = contact_view(existing)
  v.existing = true
  if existing.st == 'queued' and not existing.dw then
    v.position = redis.call('ZRANK', Q[existing.q].w, A.id)
  end
  return ok(v)
end
if q.cfg.strategy == 'designated' and not A.tgt then
  return fail('designated_target_required', 'queue ' .. A.q .. ' routes to a named agent: give target_agent_id')
end
local in_zset = redis.call('ZCARD', q.w)
local waiting = in_zset + tonumber(redis.call('HGET', K_STATE, 'dw:' .. q.cfg.id) or '0')
if waiting >= q.cfg.max_waiting then
  return fail('queue_full', 'queue ' .. A.q .. ' is full (' .. waiting .. ' waiting)')
end

local c = { id = A.id, q = A.q, q0 = A.q, ch = q.cfg.channel, p = A.p, t0 = NOW, st = 'queued', ex = {}, n = 0, meta = A.meta }
c.sc = base_score(c.p, c.t0)
emit('contact.enqueued', {
  contact_id = c.id, queue_id = c.q, channel = c.ch, priority = c.p,
  target_agent_id = A.tgt or cjson.null,
})
if q.cfg.max_wait_ms ~= cjson.null then redis.call('ZADD', K_MAXWAIT, NOW + q.cfg.max_wait_ms, c.id) end

if A.tgt then
  c.tgt = A.tgt
  c.fb = A.fb
  local a = load_agent(A.tgt)
  if a and can_take(a, c.ch) then
    make_offer(c, a)
  else
    c.dw = true
    redis.call('ZADD', K_DESIG, 0, desig_member(c))
    redis.call('HINCRBY', K_STATE, 'dw:' .. c.q, 1)
    local fb = fallback_ms(c)
    if fb ~= cjson.null then redis.call('ZADD', K_FALLBACK, NOW + fb, c.id) end
    save_contact(c)
  end
else
  -- nobody waits in this queue: the new contact is its head, so pick for it directly
  -- (same outcome as queueing it and dispatching, without writing and re-reading it)
  local a = nil
  if in_zset == 0 then a = pick(q, c) end
  if a then
    make_offer(c, a)
  else
    save_contact(c)
    redis.call('ZADD', q.w, c.sc, c.id)
    if in_zset > 0 and dispatch_queue(c.q) > 0 then
      c = load_contact(c.id) -- (maybe offered: it was read and written again)
    end
  end
end

local v = contact_view(c)
if c.st == 'queued' and not c.dw then v.position = redis.call('ZRANK', q.w, c.id) end
return ok(v)
