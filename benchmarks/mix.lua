-- The request mix of benchmarks/_apps.py (MIX), in the same order, for wrk.
-- The POST body is the same 512-byte JSON document.
local body = '{"data":"' .. string.rep("x", 501) .. '"}'
local requests = {}
local i = 0

init = function(args)
  requests[1] = wrk.format("GET", "/plain")
  requests[2] = wrk.format("GET", "/items/42")
  requests[3] = wrk.format("POST", "/echo", { ["Content-Type"] = "application/json" }, body)
  requests[4] = wrk.format("GET", "/error")
end

request = function()
  i = i % 4 + 1
  return requests[i]
end
