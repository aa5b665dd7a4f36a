-- claim: one IVR webhook delivery, in one step.
-- KEYS[1]: the signature's nonce key  KEYS[2]: the event's answer key
-- ARGV[1]: nonce TTL in s (0 = no replay guard, e.g. Twilio: no timestamp is signed)
-- ARGV[2]: the "pending" record to store  ARGV[3]: its TTL in s (a crashed worker's claim
--          expires and a retry runs the event again)
-- Returns {"replay"} when this exact signed request was seen before (nothing written),
--         {"mine"} when the caller now owns the event and must run it,
--         {"seen", record} when the event is pending or answered (nothing written).
if tonumber(ARGV[1]) > 0 then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return {'replay'}
  end
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then
  return {'mine'}
end
return {'seen', redis.call('GET', KEYS[2])}
