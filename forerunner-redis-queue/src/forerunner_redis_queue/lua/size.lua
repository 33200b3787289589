-- size.lua: count the waiting entries of some types, in one consistent look.
--
-- Key schema: see push.lua. {P}:queue:T is the zset of the waiting entries of type T.
--
-- KEYS[t]        {P}:queue:T_t   for t = 1..k, the distinct types to count
-- ARGV           none
--
-- Returns the sum of the zsets' sizes. (Counting every type is HLEN {P}:entries.)

local total = 0
for t = 1, #KEYS do
  total = total + redis.call("ZCARD", KEYS[t])
end
return total
