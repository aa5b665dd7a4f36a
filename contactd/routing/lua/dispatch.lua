-- dispatch: match waiting contacts of the given queues with free agents (used after
-- configuration changes and by the sweeper's repair pass; normal dispatch happens inside
-- the operation that created the chance).
-- KEYS, ARGV[1,2,4]: see _lib.lua.  ARGV[3]: {queues: [ids]}
-- Returns r = {offers: n}.
local need = require_queues(A.queues)
if need then return need end
local n = 0
for _, qid in ipairs(A.queues) do n = n + dispatch_queue(qid) end
return ok({ offers = n })
