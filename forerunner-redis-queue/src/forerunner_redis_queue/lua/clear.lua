-- clear.lua: delete every key of this queue, and no other.
--
-- Key schema: see push.lua. {P}:types names every type whose {P}:queue:T and
-- {P}:signal:T may exist.
--
-- The caller first reads {P}:types (SMEMBERS), so that it can name every type's keys in
-- KEYS, as a cluster requires; this script deletes nothing if a type was pushed since,
-- and returns the types the caller missed so that it can call again with them.
--
-- KEYS[1]        {P}:entries
-- KEYS[2]        {P}:seq
-- KEYS[3]        {P}:types
-- KEYS[2 + 2t]   {P}:queue:T_t   for t = 1..k, the types the caller read
-- KEYS[3 + 2t]   {P}:signal:T_t
-- ARGV[t]        T_t
--
-- Returns {} once everything is deleted, else the type names missing from ARGV.
-- Receipts ({P}:receipt:C) are not listed anywhere; they expire on their own.

local named = {}
for t = 1, #ARGV do
  named[ARGV[t]] = true
end
local missing = {}
for _, name in ipairs(redis.call("SMEMBERS", KEYS[3])) do
  if not named[name] then
    missing[#missing + 1] = name
  end
end
if #missing > 0 then
  return missing
end
for first = 1, #KEYS, 1000 do
  redis.call("UNLINK", unpack(KEYS, first, math.min(first + 999, #KEYS)))
end
return {}
