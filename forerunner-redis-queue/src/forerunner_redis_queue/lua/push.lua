-- push.lua: make entries wait, idempotently per job id.
--
-- Key schema (every key starts with the hash tag {P}, P being the URL's prefix, so all
-- of a queue's keys live in one hash slot, on one node of a cluster):
--   {P}:entries    hash    job_id -> SEQ .. TYPE, one field per waiting entry
--   {P}:seq        string  push counter; SEQ is its value as 16 lower-case hex digits
--   {P}:types      set     every type pushed since the last clear
--   {P}:queue:T    zset    the waiting entries of type T: member SEQ .. JOB_ID, score -PRIORITY
--   {P}:signal:T   list    at most one token: an entry of type T may be waiting
--   {P}:receipt:C  string  popping client C's last non-empty reply (pop.lua)
-- Members of equal score sort by their bytes, that is by SEQ: a zset pops highest
-- priority first, then earliest push.
--
-- KEYS[1]        {P}:entries
-- KEYS[2]        {P}:seq
-- KEYS[3]        {P}:types
-- KEYS[2 + 2t]   {P}:queue:T_t   for t = 1..k, the distinct types of the batch
-- KEYS[3 + 2t]   {P}:signal:T_t
-- ARGV[t]        T_t, the type names, t = 1..k
-- then one triple per entry, in batch order:
--   JOB_ID, t (the index of its type), SCORE (-PRIORITY as a decimal string)
--
-- Returns the number of entries added; an id already waiting is left as it is, also
-- when it appears twice in the batch. A type that gained entries gets a token on its
-- signal list unless one is there, which wakes one pop blocked on it (see pop.lua).

local k = (#KEYS - 3) / 2
local n = (#ARGV - k) / 3
local last = redis.call("INCRBY", KEYS[2], n)
local added = 0
local gained = {}
for e = 0, n - 1 do
  local at = k + 1 + 3 * e
  local job_id, t = ARGV[at], tonumber(ARGV[at + 1])
  local seq = string.format("%016x", last - n + e + 1)
  if redis.call("HSETNX", KEYS[1], job_id, seq .. ARGV[t]) == 1 then
    redis.call("ZADD", KEYS[2 + 2 * t], ARGV[at + 2], seq .. job_id)
    gained[t] = true
    added = added + 1
  end
end
for t in pairs(gained) do
  redis.call("SADD", KEYS[3], ARGV[t])
  if redis.call("LLEN", KEYS[3 + 2 * t]) == 0 then
    redis.call("RPUSH", KEYS[3 + 2 * t], "1")
  end
end
return added
