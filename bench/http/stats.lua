-- Loaded by every script here: each wrk thread tallies the status of every response,
-- and done() prints one line that bench_http.py parses:
--
--     bench-statuses 200=18488 422=12 app-errors=0
--
-- app-errors counts answers whose status is 2xx but whose body holds the marker a script
-- sets in `app_error_marker` (pykoi answers failures as 200 {"status": "500", ...}).

statuses = {}
app_errors = 0
app_error_marker = nil

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_id", #threads)
end

function response(status, headers, body)
   local code = tostring(status)
   statuses[code] = (statuses[code] or 0) + 1
   if app_error_marker and status < 300 and body and body:find(app_error_marker, 1, true) then
      app_errors = app_errors + 1
   end
end

function done(summary, latency, requests)
   local total = {}
   local app = 0
   for _, thread in ipairs(threads) do
      for code, n in pairs(thread:get("statuses")) do
         total[code] = (total[code] or 0) + n
      end
      app = app + thread:get("app_errors")
   end
   local parts = {}
   for code, n in pairs(total) do
      parts[#parts + 1] = code .. "=" .. n
   end
   table.sort(parts)
   io.write("bench-statuses ", table.concat(parts, " "), " app-errors=", app, "\n")
end

-- Lines of a file, for the ids the benchmark writes before a run.
function read_lines(path)
   local lines = {}
   for line in io.lines(path) do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   assert(#lines > 0, "no ids in " .. path)
   return lines
end
