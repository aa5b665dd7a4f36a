-- Shared library code of the routing functions (see routing/scripts.py).
--
-- KEYS (every routing script):
--   1 contacts   hash  contact id -> contact JSON
--   2 agents     hash  agent id -> agent JSON
--   3 state      hash  "rr:<queue>" -> round-robin cursor, "dw:<queue>" -> designated waiting count
--   4 offers     zset  contact id -> offer deadline (ms)
--   5 wraps      zset  contact id -> wrap-up deadline (ms)
--   6 heartbeats zset  agent id -> heartbeat deadline (ms)
--   7 designated zset  (all scores 0) "<agent>|<score>|<contact>" lexically ordered
--   8 fallbacks  zset  contact id -> designated fallback time (ms)
--   9 maxwait    zset  contact id -> max-wait deadline (ms)
--  10 reoffer    zset  contact id -> when a decline/no-answer exclusion lapses (ms)
--  11 finals     zset  contact id -> time it reached a final state (ms)
--  12.. three per queue, in the order of ARGV[2]: waiting zset, eligible zset, rotation zset
-- ARGV:
--   1 now (ms)
--   2 JSON array of the configs of the queues whose keys follow (see routing/queues.py)
--   3 JSON object: the operation's arguments
--   4 JSON object: routing globals {cdv: chat during voice}
-- Returns a JSON string: {"ok":true,"r":...,"ev":[...]} | {"ok":false,"code":..,"msg":..,"ev":[...]}
--   | {"need":[queue ids]} when a queue the operation must touch was not passed (nothing changed).

-- Loaded once as a Redis Functions library: every operation file becomes a function that
-- first calls begin(KEYS, ARGV), which resets this per-call state.
local NOW, A, G
local K_CONTACTS, K_AGENTS, K_STATE, K_OFFERS, K_WRAPS
local K_HB, K_DESIG, K_FALLBACK, K_MAXWAIT, K_REOFFER, K_FINALS
local Q, EVENTS
-- decoded queue configs by their JSON text (callers send the same few strings again and
-- again); never mutated, bounded
local CFG_CACHE, CFG_CACHED = {}, 0

local function decoded(text)
  local v = CFG_CACHE[text]
  if v == nil then
    if CFG_CACHED >= 256 then
      CFG_CACHE, CFG_CACHED = {}, 0
    end
    v = cjson.decode(text)
    CFG_CACHE[text] = v
    CFG_CACHED = CFG_CACHED + 1
  end
  return v
end

local function begin(KEYS, ARGV)
  NOW = tonumber(ARGV[1])
  A = cjson.decode(ARGV[3])
  G = decoded(ARGV[4])
  K_CONTACTS, K_AGENTS, K_STATE, K_OFFERS, K_WRAPS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  K_HB, K_DESIG, K_FALLBACK, K_MAXWAIT, K_REOFFER, K_FINALS =
    KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
  Q = {}
  for i, cfg in ipairs(decoded(ARGV[2])) do
    local b = 11 + (i - 1) * 3
    Q[cfg.id] = { cfg = cfg, w = KEYS[b + 1], e = KEYS[b + 2], r = KEYS[b + 3] }
  end
  EVENTS = {}
end

local SCAN_LIMIT = 200
local HEAD_BASE = -35184372088832 -- -(2^45): requeued-at-head contacts sort before everyone
local PRIO_STEP = 2199023255552 -- 2^41 ms (~69 years) per priority level
local MAX_PRIO = 9

local function emit(kind, data)
  data.type = kind
  data.at = NOW
  EVENTS[#EVENTS + 1] = data
end

local function ok(r)
  return cjson.encode({ ok = true, r = r or cjson.null, ev = EVENTS })
end

local function fail(code, msg)
  return cjson.encode({ ok = false, code = code, msg = msg, ev = EVENTS })
end

-- Returns nil when every listed queue was passed, else the {"need":...} reply.
local function require_queues(ids)
  local missing, seen = {}, {}
  for _, qid in ipairs(ids) do
    if not Q[qid] and not seen[qid] then
      missing[#missing + 1] = qid
      seen[qid] = true
    end
  end
  if #missing > 0 then
    return cjson.encode({ need = missing })
  end
  return nil
end

-- records ---------------------------------------------------------------------

local function load_contact(cid)
  local raw = redis.call('HGET', K_CONTACTS, cid)
  if not raw then return nil end
  local c = cjson.decode(raw)
  if c.ex == nil or next(c.ex) == nil then c.ex = {} end
  return c
end

local function save_contact(c)
  if next(c.ex) == nil then c.ex = nil end
  redis.call('HSET', K_CONTACTS, c.id, cjson.encode(c))
  if c.ex == nil then c.ex = {} end
end

local function load_agent(aid)
  local raw = redis.call('HGET', K_AGENTS, aid)
  if not raw then return nil end
  local a = cjson.decode(raw)
  if a.ct == nil then a.ct = {} end
  if a.q == nil then a.q = {} end
  return a
end

local function save_agent(a)
  local ct_empty = next(a.ct) == nil
  if a.dr and ct_empty and a.st ~= 'offline' then
    -- draining (supervisor): the last piece of work is done, the agent leaves routing
    emit('agent.state_changed', { agent_id = a.id, state = 'offline', reason = 'drained', previous = a.st })
    a.st, a.rsn, a.since, a.dr = 'offline', 'drained', NOW, nil
    redis.call('ZREM', K_HB, a.id)
  end
  if ct_empty then a.ct = nil end
  redis.call('HSET', K_AGENTS, a.id, cjson.encode(a))
  if ct_empty then a.ct = {} end
end

local function fmt(n)
  return string.format('%d', n)
end

-- agents ----------------------------------------------------------------------

local function load_on(a, ch)
  local n = 0
  for _, slot in pairs(a.ct) do
    if slot.ch == ch then n = n + 1 end
  end
  return n
end

local function busy_count(a) -- offered or active, wrap-up excluded
  local n = 0
  for _, slot in pairs(a.ct) do
    if slot.s ~= 'wrap' then n = n + 1 end
  end
  return n
end

local function can_take(a, ch)
  if a.st ~= 'available' then return false end
  local cap = a.cap[ch] or 0
  if load_on(a, ch) >= cap then return false end
  if ch == 'chat' and not G.cdv and load_on(a, 'voice') > 0 then return false end
  return true
end

local function is_member(a, qid)
  for _, q in ipairs(a.q) do
    if q == qid then return true end
  end
  return false
end

local function member_of(a)
  return string.format('%015d|%s', a.le or 0, a.id)
end

local function ratio(a, ch)
  return load_on(a, ch) / a.cap[ch]
end

local function eligible_in(a, q)
  return is_member(a, q.cfg.id) and not q.cfg.removed and can_take(a, q.cfg.channel)
end

-- Put the agent's entries in one queue's eligible/rotation sets in line with its record.
local function refresh_in(a, q, old_member)
  if old_member and old_member ~= member_of(a) then
    redis.call('ZREM', q.e, old_member)
  end
  if eligible_in(a, q) then
    redis.call('ZADD', q.e, ratio(a, q.cfg.channel), member_of(a))
    redis.call('ZADD', q.r, 0, a.id)
  else
    redis.call('ZREM', q.e, member_of(a))
    redis.call('ZREM', q.r, a.id)
  end
end

-- Every queue of the agent must have been passed (callers check with agent_queue_ids).
local function refresh_agent(a, old_member, extra_queue_ids)
  for _, qid in ipairs(a.q) do
    refresh_in(a, Q[qid], old_member)
  end
  for _, qid in ipairs(extra_queue_ids or {}) do
    if Q[qid] and not is_member(a, qid) then refresh_in(a, Q[qid], old_member) end
  end
end

local function set_agent_state(a, st, reason)
  if st == 'available' or st == 'offline' then a.dr = nil end -- ends a drain
  if a.st == st and (a.rsn or '') == (reason or '') then return end
  local before = a.st
  a.st = st
  a.rsn = reason or ''
  a.since = NOW
  emit('agent.state_changed', { agent_id = a.id, state = st, reason = a.rsn, previous = before })
end

-- contacts --------------------------------------------------------------------

local function base_score(prio, t0)
  return (MAX_PRIO - prio) * PRIO_STEP + t0
end

local function excluded(c, aid)
  local until_ms = c.ex[aid]
  return until_ms ~= nil and until_ms > NOW
end

local function desig_member(c)
  return c.tgt .. '|' .. string.format('%016d', c.sc - HEAD_BASE) .. '|' .. c.id
end

local function drop_from_waiting(c)
  local q = Q[c.q]
  if c.tgt and c.dw then
    redis.call('ZREM', K_DESIG, desig_member(c))
    redis.call('HINCRBY', K_STATE, 'dw:' .. c.q, -1)
    redis.call('ZREM', K_FALLBACK, c.id)
    c.dw = nil
  elseif q then
    redis.call('ZREM', q.w, c.id)
  end
end

local function waiting_count(q)
  local dw = tonumber(redis.call('HGET', K_STATE, 'dw:' .. q.cfg.id) or '0')
  return redis.call('ZCARD', q.w) + dw
end

local function finalize(c, final_state, reason)
  c.st = final_state
  c.fr = reason
  c.te = NOW
  c.ag = nil
  c.of = nil
  c.od = nil
  redis.call('ZREM', K_MAXWAIT, c.id)
  redis.call('ZREM', K_REOFFER, c.id)
  redis.call('ZREM', K_FALLBACK, c.id)
  redis.call('ZADD', K_FINALS, NOW, c.id)
  save_contact(c)
end

local function make_offer(c, a)
  local q = Q[c.q]
  c.n = (c.n or 0) + 1
  c.st = 'offered'
  c.ag = a.id
  c.of = c.id .. '~' .. fmt(c.n)
  c.od = NOW + q.cfg.offer_ms
  a.ct[c.id] = { s = 'offered', ch = c.ch, q = c.q }
  redis.call('ZADD', K_OFFERS, c.od, c.id)
  save_contact(c)
  save_agent(a)
  -- this queue's view of the agent is updated now; its other queues catch up lazily
  refresh_in(a, q, nil)
  emit('offer.created', {
    offer_id = c.of, contact_id = c.id, agent_id = a.id, queue_id = c.q, channel = c.ch,
    priority = c.p, deadline = c.od, waited_ms = NOW - c.t0, attempt = c.n,
  })
end

-- pickers: return (agent or nil, whether any eligible agent was seen) -----------

local function pick_idle(q, c)
  local seen, pos = false, 0
  for _ = 1, SCAN_LIMIT do
    local it = redis.call('ZRANGE', q.e, pos, pos, 'WITHSCORES')
    if #it == 0 then break end
    local member, score = it[1], tonumber(it[2])
    local a = load_agent(string.sub(member, 17))
    if not a or not eligible_in(a, q) then
      redis.call('ZREM', q.e, member)
    elseif member ~= member_of(a) or score ~= ratio(a, q.cfg.channel) then
      redis.call('ZREM', q.e, member)
      redis.call('ZADD', q.e, ratio(a, q.cfg.channel), member_of(a))
    else
      seen = true
      if not excluded(c, a.id) then return a, true end
      pos = pos + 1
    end
  end
  return nil, seen
end

local function pick_round_robin(q, c)
  local ckey = 'rr:' .. q.cfg.id
  local cursor = redis.call('HGET', K_STATE, ckey) or ''
  local seen, wrapped = false, false
  local lo = (cursor == '') and '-' or ('(' .. cursor)
  for _ = 1, SCAN_LIMIT do
    local it = redis.call('ZRANGEBYLEX', q.r, lo, '+', 'LIMIT', 0, 1)
    if #it == 0 then
      if wrapped or lo == '-' then break end
      wrapped, lo = true, '-'
    else
      local aid = it[1]
      if wrapped and aid > cursor then break end
      local a = load_agent(aid)
      if not a or not eligible_in(a, q) then
        redis.call('ZREM', q.r, aid)
      else
        seen = true
        if not excluded(c, aid) then
          redis.call('HSET', K_STATE, ckey, aid)
          return a, true
        end
        lo = '(' .. aid
      end
    end
  end
  return nil, seen
end

-- How the queue picks agents: a designated queue's contacts that wait for anyone go by
-- its fallback strategy.
local function strategy_of(q)
  if q.cfg.strategy == 'designated' then return q.cfg.fallback_strategy end
  return q.cfg.strategy
end

local function pick(q, c)
  if strategy_of(q) == 'round_robin' then return pick_round_robin(q, c) end
  return pick_idle(q, c)
end

-- dispatch --------------------------------------------------------------------

-- The set its strategy picks agents from: nobody in it, nobody to offer to.
local function pick_set(q)
  if strategy_of(q) == 'round_robin' then return q.r end
  return q.e
end

-- Offer waiting contacts of one queue to agents until no pair matches.
local function dispatch_queue(qid)
  local q = Q[qid]
  if not q or q.cfg.removed then return 0 end
  -- a queue nobody can take from (a burst while every agent is busy or away) costs
  -- one look, not a read of its head contact
  if redis.call('ZCARD', pick_set(q)) == 0 then return 0 end
  local made, pos = 0, 0
  for _ = 1, SCAN_LIMIT do
    local it = redis.call('ZRANGE', q.w, pos, pos)
    if #it == 0 then break end
    local c = load_contact(it[1])
    if not c or c.st ~= 'queued' or c.q ~= qid then
      redis.call('ZREM', q.w, it[1]) -- orphan entry; the record says it is not waiting here
    else
      local a, seen = pick(q, c)
      if a then
        redis.call('ZREM', q.w, c.id)
        make_offer(c, a)
        made = made + 1
      elseif not seen then
        break -- nobody can take anything from this queue
      else
        pos = pos + 1 -- only agents who just declined this one are free: try the next contact
      end
    end
  end
  return made
end

local function head_score(qid)
  local q = Q[qid]
  if not q then return nil end
  local it = redis.call('ZRANGE', q.w, 0, 0, 'WITHSCORES')
  if #it == 0 then return nil end
  return tonumber(it[2])
end

-- Offer work to one agent who may have a free slot: designated contacts first, then
-- the agent's queues, the queue whose head has waited longest (by priority) first.
-- Takes the id, not a record: the agent is always read fresh here, because dispatch earlier
-- in the same script may already have given them work (a stale record would lose it).
local function dispatch_agent(aid)
  local a = load_agent(aid)
  if not a or a.st ~= 'available' then return end
  local prefix = aid .. '|'
  local lo = '[' .. prefix
  for _ = 1, SCAN_LIMIT do
    local it = redis.call('ZRANGEBYLEX', K_DESIG, lo, '[' .. prefix .. '\255', 'LIMIT', 0, 1)
    if #it == 0 then break end
    local cid = string.match(it[1], '|([^|]+)$')
    local c = load_contact(cid)
    if not c or c.st ~= 'queued' or not c.dw then
      redis.call('ZREM', K_DESIG, it[1])
    elseif Q[c.q] and can_take(a, c.ch) and not excluded(c, aid) then
      drop_from_waiting(c)
      make_offer(c, a)
      a = load_agent(aid)
    else
      lo = '(' .. it[1]
    end
  end
  local order = {}
  for _, qid in ipairs(a.q) do
    local s = head_score(qid)
    if s then order[#order + 1] = { qid, s } end
  end
  table.sort(order, function(x, y) return x[2] < y[2] end)
  for _, entry in ipairs(order) do
    dispatch_queue(entry[1])
  end
end

-- The decline/no-answer exclusion lease: due at the earliest exclusion still in the future,
-- so every lapse is acted on (a later decline never postpones an earlier lapse).
local function arm_reoffer(c)
  local soonest = nil
  for _, until_ms in pairs(c.ex) do
    if until_ms > NOW and (soonest == nil or until_ms < soonest) then soonest = until_ms end
  end
  if soonest then
    redis.call('ZADD', K_REOFFER, soonest, c.id)
  else
    redis.call('ZREM', K_REOFFER, c.id)
  end
end

-- How long a contact waits for its target agent (ms; null: for as long as it takes).
local function fallback_ms(c)
  if c.fb then return c.fb end
  return Q[c.q].cfg.fallback_ms
end

-- Put a contact (not final) back to waiting. at_head: before everyone in its queue.
local function requeue(c, at_head)
  c.st = 'queued'
  c.ag = nil
  c.of = nil
  c.od = nil
  if at_head then c.sc = HEAD_BASE + c.t0 end
  local q = Q[c.q]
  if c.tgt and not at_head and fallback_ms(c) == cjson.null then
    c.dw = true
    redis.call('ZADD', K_DESIG, 0, desig_member(c))
    redis.call('HINCRBY', K_STATE, 'dw:' .. c.q, 1)
  else
    c.tgt = nil
    c.fb = nil
    c.dw = nil
    redis.call('ZADD', q.w, c.sc, c.id)
  end
  arm_reoffer(c)
  save_contact(c)
end

-- The queues an operation on this agent needs: its own, those of its contacts, and those
-- of contacts waiting for it by name (dispatch_agent offers those first).
local function designated_queue_ids(aid, ids)
  local prefix = aid .. '|'
  local waiting = redis.call('ZRANGEBYLEX', K_DESIG, '[' .. prefix, '[' .. prefix .. '\255',
    'LIMIT', 0, SCAN_LIMIT)
  for _, member in ipairs(waiting) do
    local c = load_contact(string.match(member, '|([^|]+)$'))
    if c then ids[#ids + 1] = c.q end
  end
  return ids
end

local function agent_queue_ids(a)
  local ids = {}
  for _, qid in ipairs(a.q) do ids[#ids + 1] = qid end
  for _, slot in pairs(a.ct) do ids[#ids + 1] = slot.q end
  return designated_queue_ids(a.id, ids)
end

-- Take one contact off an agent's slot (offer declined/expired/revoked).
local function release_slot(a, cid)
  a.ct[cid] = nil
  redis.call('ZREM', K_OFFERS, cid)
end

-- The agent's slot for this contact is finished; record when their last work ended.
local function free_slot(a, cid)
  a.ct[cid] = nil
  a.le = NOW
  redis.call('ZREM', K_WRAPS, cid)
end

-- Contact record as shown to callers.
local function contact_view(c)
  local v = {
    contact_id = c.id, queue_id = c.q, state = c.st, channel = c.ch, priority = c.p,
    enqueued_at = c.t0, agent_id = c.ag or c.la or cjson.null, offer_id = c.of or cjson.null,
    target_agent_id = c.tgt or cjson.null, final_reason = c.fr or cjson.null,
    ended_at = c.te or cjson.null, accepted_at = c.ta or cjson.null, offers = c.n or 0,
  }
  return v
end

local function is_final(c)
  return c.st == 'ended' or c.st == 'abandoned' or c.st == 'left_message'
end

-- An active contact is over: final state, the slot goes to wrap-up (or frees at once).
local function finish_active(c, a, reason, disposition)
  local q = Q[c.q]
  local old = member_of(a)
  c.disp = disposition
  finalize(c, 'ended', reason)
  if q.cfg.wrap_ms > 0 and a.st ~= 'offline' then
    a.ct[c.id] = { s = 'wrap', ch = c.ch, q = c.q }
    redis.call('ZADD', K_WRAPS, NOW + q.cfg.wrap_ms, c.id)
    if a.st == 'available' and busy_count(a) == 0 then set_agent_state(a, 'wrap_up', '') end
  else
    free_slot(a, c.id)
  end
  emit('contact.ended', {
    contact_id = c.id, queue_id = c.q, agent_id = a.id, reason = reason,
    handle_ms = NOW - (c.ta or NOW), wrap_up_ms = q.cfg.wrap_ms, disposition = disposition,
  })
  save_agent(a)
  refresh_agent(a, old)
  dispatch_agent(a.id)
end

-- The agent is gone (logout, heartbeat expiry, disconnect): everything they held goes
-- back to the head of its queue, then other agents are offered it.
local function lose_agent(a, reason)
  local queues, seen = {}, {}
  for cid, slot in pairs(a.ct) do
    local c = load_contact(cid)
    if slot.s == 'wrap' then
      redis.call('ZREM', K_WRAPS, cid)
    elseif c and (c.st == 'offered' or c.st == 'active') and c.ag == a.id then
      local was = c.st
      if was == 'offered' then
        redis.call('ZREM', K_OFFERS, cid)
        c.lo = c.of
        emit('offer.revoked', {
          offer_id = c.of, contact_id = cid, agent_id = a.id, queue_id = c.q, reason = reason,
        })
      end
      requeue(c, true)
      emit('contact.requeued', {
        contact_id = cid, queue_id = c.q, agent_id = a.id, reason = 'agent_lost',
        was = was, at_head = true,
      })
      if not seen[c.q] then
        seen[c.q] = true
        queues[#queues + 1] = c.q
      end
    end
  end
  local old = member_of(a)
  a.ct = {}
  a.le = NOW
  redis.call('ZREM', K_HB, a.id)
  set_agent_state(a, 'offline', reason)
  save_agent(a)
  refresh_agent(a, old)
  for _, qid in ipairs(queues) do dispatch_queue(qid) end
  return #queues
end

local function agent_view(a)
  local slots = {}
  for cid, slot in pairs(a.ct) do
    slots[#slots + 1] = { contact_id = cid, state = slot.s, channel = slot.ch, queue_id = slot.q }
  end
  return {
    agent_id = a.id, state = a.st, reason = a.rsn or '', since = a.since, queues = a.q,
    capacity = a.cap, slots = slots, no_answer = a.miss or 0, draining = a.dr or false,
  }
end
