-- release: give up an event claim after an unexpected failure, so a retry runs it again.
-- KEYS[1]: the event's answer key  ARGV[1]: the owner token of the claim
-- Deletes only a pending record this owner wrote (compare-and-delete). Returns 1 or 0.
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v).owner == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
