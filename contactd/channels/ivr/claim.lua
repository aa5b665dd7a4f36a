-- claim: one IVR webhook delivery, in one step.
-- KEYS[1]: the signature's nonce key  KEYS[2]: the event's answer key
-- ARGV[1]: nonce TTL in s (0 = no replay guard, e.g. Twilio: no timestamp is signed)
-- KEYS[3]: the call's state key (a call.incoming event creates it; else unused)
-- ARGV[2]: the "pending" record to store  ARGV[3]: its TTL in s (a crashed worker's claim
--          expires and a retry runs the event again)
-- ARGV[4]: the new call's state to create with NX ("" = none)  ARGV[5]: its TTL in s
-- KEYS[4]: the day's service-number counter  ARGV[6]: its TTL in s (0 = take no number)
-- Returns {"replay"} when this exact signed request was seen before (nothing written),
--         {"mine", created, number} when the caller now owns the event and must run it;
--           created is 1 when the call's state was created now, 0 when it existed (or none
--           given); number is the service number taken for the new call (0 = none taken),
--         {"seen", record} when the event is pending or answered (nothing written).
if tonumber(ARGV[1]) > 0 then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return {'replay'}
  end
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then
  if ARGV[4] ~= '' and redis.call('SET', KEYS[3], ARGV[4], 'NX', 'EX', ARGV[5]) then
    local number = 0
    if tonumber(ARGV[6]) > 0 then
      number = redis.call('INCR', KEYS[4])
      redis.call('EXPIRE', KEYS[4], ARGV[6])
    end
    return {'mine', 1, number}
  end
  return {'mine', 0, 0}
end
return {'seen', redis.call('GET', KEYS[2])}
