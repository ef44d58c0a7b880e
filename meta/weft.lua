---@meta weft
-- LuaLS annotations for weft (installed with the rock, never required).
-- Add this directory to the language server's `workspace.library`.

---@class weft
---@field _VERSION string "weft MAJOR.MINOR.PATCH"
local weft = {}

---A watcher id: a positive integer.  Ids are never reused, so a stale id
---is harmlessly "not found".
---@alias weft.id integer

---A descriptor: an integer, or a Lua file handle (kept alive while watched).
---@alias weft.fd integer|file*

---@class weft.opts
---@field enable? boolean create enabled (default true)
---@field keep_alive? boolean keep `run` alive while enabled (default true)
---@field data? any passed to the callback as its last argument

---@class weft.every_opts: weft.opts
---@field delay? number first delay in ms (default: the interval)

---@class weft.watcher_info
---@field id weft.id
---@field kind "immediately"|"once"|"every"|"readable"|"writable"|"signal"|"poll"
---@field enabled boolean
---@field ref boolean
---@field where string "file:line" of the call that created it, or "host"

---Runs the loop until no enabled, referenced watcher remains, or until
---`weft.stop()`.  With `fn`, runs `fn(...)` as a task and returns its
---results (or re-raises its error).  Re-raises a callback's error (with a traceback)
---unless `weft.on_error` set a handler.
---@param fn? fun(...): ...
---@param ... any
---@return any ...
function weft.run(fn, ...) end

---Runs one iteration; with `nowait`, never blocks.
---@param nowait? boolean
---@return boolean work_remains
function weft.tick(nowait) end

---Makes `run` return at the end of the current iteration; callbacks due
---but not yet run stay due.
function weft.stop() end

---The loop's cached time in milliseconds.
---@return integer
function weft.now() end

---Calls `cb(id, data)` in the next iteration.
---@param cb fun(id: weft.id, data: any)
---@param opts? weft.opts
---@return weft.id
function weft.immediately(cb, opts) end

---Calls `cb(id, data)` once, `ms` after `weft.now()`.
---@param ms number
---@param cb fun(id: weft.id, data: any)
---@param opts? weft.opts
---@return weft.id
function weft.once(ms, cb, opts) end

---Calls `cb(id, data)` every `ms`, without drift.
---@param ms number
---@param cb fun(id: weft.id, data: any)
---@param opts? weft.every_opts
---@return weft.id
function weft.every(ms, cb, opts) end

---Calls `cb(id, fd, data)` while `fd` is readable, and at EOF/hang-up.
---@param fd weft.fd
---@param cb fun(id: weft.id, fd: weft.fd, data: any)
---@param opts? weft.opts
---@return weft.id
function weft.on_readable(fd, cb, opts) end

---Calls `cb(id, fd, data)` while `fd` is writable (every iteration: enable
---it only while there is data to write).
---@param fd weft.fd
---@param cb fun(id: weft.id, fd: weft.fd, data: any)
---@param opts? weft.opts
---@return weft.id
function weft.on_writable(fd, cb, opts) end

---Calls `cb(id, signo, data)` each time the signal arrives.
---@param sig integer|string a number, or a name like "SIGINT" or "INT"
---@param cb fun(id: weft.id, signo: integer, data: any)
---@param opts? weft.opts
---@return weft.id
function weft.on_signal(sig, cb, opts) end

---@param id weft.id
---@return boolean ok false for an unknown, cancelled or finished id
function weft.enable(id) end

---@param id weft.id
---@return boolean ok
function weft.disable(id) end

---@param id weft.id
---@return boolean ok
function weft.cancel(id) end

---@param id weft.id
---@return boolean ok
function weft.ref(id) end

---@param id weft.id
---@return boolean ok
function weft.unref(id) end

---Sets the handler for errors raised in callbacks; nil restores the
---default (the error propagates out of `weft.run`).
---@param handler? fun(err: any)
---@return fun(err: any)? previous
function weft.on_error(handler) end

---Every live watcher on the loop.
---@return weft.watcher_info[]
function weft.watchers() end

---A promise (the promise of a task is the task itself).
---@class weft.promise
local Promise = {}

---@param ... any
---@return boolean settled false if it had settled before
function Promise:resolve(...) end

---@param err any
---@return boolean settled
function Promise:reject(err) end

---@param reason? any
---@return boolean was_pending
function Promise:cancel(reason) end

---@return "pending"|"fulfilled"|"rejected"|"cancelled"
function Promise:status() end

---@param on_ok? fun(...): ...
---@param on_err? fun(err: any): ...
---@return weft.promise
function Promise:next(on_ok, on_err) end

---@param on_err fun(err: any): ...
---@return weft.promise
function Promise:catch(on_err) end

---@param fn fun()
---@return weft.promise
function Promise:finally(fn) end

---@param timeout_ms? number
---@return any ...
function Promise:await(timeout_ms) end

---A task's stack while suspended, as text.
---@return string
function Promise:traceback() end

---Where a suspended task waits.
---@return string? file
---@return integer? line
function Promise:where() end

---A task's name: opts.name or "task#N" (nil for a plain promise).
---@type string?
Promise.name = nil

---Runs `fn(...)` as a new task; returns its promise.
---@param fn fun(...): ...
---@param ... any
---@return weft.promise
function weft.async(fn, ...) end

---As weft.async, with options: `name`; `stackful` (run on its own C stack,
---so its waits work inside C calls such as table.sort comparators).
---@param opts { name?: string, stackful?: boolean, stack_size?: integer }
---@param fn fun(...): ...
---@param ... any
---@return weft.promise
function weft.spawn(opts, fn, ...) end

---Waits until `fd` is readable (or at EOF).
---@param fd weft.fd
---@param timeout_ms? number
---@return true|nil ok
---@return "timeout"? why
function weft.readable(fd, timeout_ms) end

---Waits until `fd` is writable.
---@param fd weft.fd
---@param timeout_ms? number
---@return true|nil ok
---@return "timeout"? why
function weft.writable(fd, timeout_ms) end

---Waits for a signal.
---@param sig integer|string
---@param timeout_ms? number
---@return integer? signo
---@return "timeout"? why
function weft.signal(sig, timeout_ms) end

---@class weft.mutex
---@field lock fun(self: weft.mutex, timeout_ms?: number): weft.mutex?, "timeout"?
---@field unlock fun(self: weft.mutex)
---@field locked fun(self: weft.mutex): boolean

---@return weft.mutex
function weft.mutex() end

---@class weft.semaphore
---@field acquire fun(self: weft.semaphore, timeout_ms?: number): true?, "timeout"?
---@field release fun(self: weft.semaphore)

---@param n integer
---@return weft.semaphore
function weft.semaphore(n) end

---@class weft.event
---@field set fun(self: weft.event)
---@field clear fun(self: weft.event)
---@field is_set fun(self: weft.event): boolean
---@field wait fun(self: weft.event, timeout_ms?: number): true?, "timeout"?

---@return weft.event
function weft.event() end

---@class weft.channel
---@field send fun(self: weft.channel, v: any): true
---@field recv fun(self: weft.channel, timeout_ms?: number): any, "timeout"?
---@field try_send fun(self: weft.channel, v: any): boolean
---@field close fun(self: weft.channel)

---@param capacity? integer nil: unbounded; 0: rendezvous
---@return weft.channel
function weft.channel(capacity) end

---@class weft.group
---@field spawn fun(self: weft.group, fn: fun(...), ...): weft.promise
---@field wait fun(self: weft.group, timeout_ms?: number)
---@field cancel fun(self: weft.group, reason?: any)

---@return weft.group
function weft.group() end

---A drop-in coroutine library whose resume and wrap let a generator
---await inside a default task.
---@type coroutinelib
weft.coroutine = coroutine

---The live tasks, oldest first.
---@return weft.promise[]
function weft.tasks() end

---Runs `fn(...)` as a task with no promise; its error goes to the error handler.
---@param fn fun(...)
---@param ... any
function weft.defer(fn, ...) end

---Waits for a promise (or a list of them, as weft.all): suspends the
---running task, or runs the loop in the main chunk.  Returns its values or
---raises its error; with `timeout_ms`, raises a timeout error past it.
---@param p weft.promise|weft.promise[]
---@param timeout_ms? number
---@return any ...
function weft.await(p, timeout_ms) end

---Suspends the running task for `ms` (runs the loop in the main chunk).
---@param ms number
function weft.delay(ms) end

---@return weft.promise? task the running task, or nil in the main chunk
function weft.current() end

---@return weft.promise
function weft.promise() end

---Fulfilled with `{ {values of p1}, ... }` once all are; rejected with the first error.
---@param list weft.promise[]
---@return weft.promise
function weft.all(list) end

---Fulfilled with the first fulfilled promise's values.
---@param list weft.promise[]
---@return weft.promise
function weft.any(list) end

---Settles like the first promise to settle.
---@param list weft.promise[]
---@return weft.promise
function weft.race(list) end

---Fulfilled with `{ {ok = true, ...} | {ok = false, err = e}, ... }` once all settled.
---@param list weft.promise[]
---@return weft.promise
function weft.settle(list) end

---Settles like `p` unless `ms` pass first (then cancels `p`, and rejects with a timeout error once it has ended).
---@param p weft.promise
---@param ms number
---@return weft.promise
function weft.timeout(p, ms) end

---Runs `fn(...)` with the running task's cancellation held back until it
---returns (the first wait after raises it); or, given a promise, returns a
---follower whose cancellation does not reach it.
---@overload fun(p: weft.promise): weft.promise
---@param fn fun(...): ...
---@return ...
function weft.shield(fn, ...) end

---@param err any
---@return boolean
function weft.is_cancelled(err) end

---@param err any
---@return boolean
function weft.is_timeout(err) end

---A fiber: a function on its own C stack, started and resumed by hand.
---@class weft.fiber_object
local Fiber = {}

---@param ... any arguments for the fiber's function
---@return any ... values given to weft.fiber.suspend, or the function's results
function Fiber:start(...) end

---@param ... any what the pending weft.fiber.suspend returns
---@return any ...
function Fiber:resume(...) end

---@param err any raised from the pending weft.fiber.suspend
---@return any ...
function Fiber:throw(err) end

---@return "init"|"suspended"|"running"|"terminated"
function Fiber:status() end

---@return any ... the function's results
function Fiber:result() end

---@return string
function Fiber:traceback() end

---@return string? file
---@return integer? line
function Fiber:where() end

---Releases the fiber's stack now.
function Fiber:close() end

---@class weft.fiber_lib
---@overload fun(fn: fun(...): ..., opts?: { stack_size?: integer }): weft.fiber_object
weft.fiber = {}

---Suspends the running fiber, handing `...` to its resumer.
---@param ... any
---@return any ... the values of the next resume
function weft.fiber.suspend(...) end

---@return weft.fiber_object?
function weft.fiber.current() end


-- ---- Streams and I/O ---------------------------------------------------------

---@class weft.stream
local Stream = {}

---Reads by formats ("l", "L", "a", n, -n: up to n as soon as any); nil at
---end of file; nil, message, code on failure ("read: line too long",
---"EMSGSIZE" for a line past the stream's limit; the bytes stay buffered).
---@param ... "l"|"L"|"a"|integer
---@return string|nil ...
function Stream:read(...) end

---@return weft.promise
function Stream:read_async(...) end

---Writes strings and numbers; waits while the write queue is full.
---@param ... string|number
---@return weft.stream|nil self
---@return string? message
---@return string? code
function Stream:write(...) end

---@return weft.promise
function Stream:write_async(...) end

---Waits until the write queue is empty.
---@return weft.stream|nil self
function Stream:flush() end

---@return weft.promise
function Stream:flush_async() end

---Raises on a read error (a line past the limit: "read: line too long").
---@param ... "l"|"L"|"a"|integer
---@return fun(): string?
function Stream:lines(...) end

---The application protocol agreed by ALPN (a TLS stream), or nil.
---@return string?
function Stream:alpn() end

---The peer's certificate (a TLS stream), or nil if it sent none.
---@return { subject: string, issuer: string, serial: string, not_before: integer, not_after: integer, fingerprint: string, san: string[], pem: string }?
function Stream:peer_certificate() end

---What a TLS stream agreed.
---@return { version: string, cipher: string, alpn: string?, servername: string?, resumed: boolean }
function Stream:tls_info() end


---Flushes (unless a writer is blocked), then closes; waiting calls get
---nil, "closed", "ECLOSED".
---@return true|nil
function Stream:close() end

---@return weft.promise
function Stream:close_async() end

---Half-closes a socket for writing.
---@return true|nil ok
---@return string? message
---@return string? code
function Stream:shutdown() end

---@param ms number? nil removes the limit
---@return weft.stream
function Stream:settimeout(ms) end

---@return number?
function Stream:gettimeout() end

---@return integer
function Stream:getfd() end

---@return string host_or_path
---@return integer? port
function Stream:peername() end

---@return string host_or_path
---@return integer? port
function Stream:sockname() end

---Socket options, and the stream's own: "writequeue" (the write queue's
---limit, default 256 KiB) and "maxline" (the line limit of read "l"/"L"
---and lines(), default 64 KiB).
---@param name "nodelay"|"keepalive"|"reuseaddr"|"reuseport"|"broadcast"|"sndbuf"|"rcvbuf"|"writequeue"|"maxline"
---@param value boolean|integer
---@return true|nil ok
function Stream:setoption(name, value) end

---@class weft.server
local Server = {}

---Waits for a connection (timeout_ms: for the whole call).  Out of
---descriptors or kernel memory it keeps waiting, backing off, instead of
---failing.
---@param timeout_ms? number
---@return weft.stream|nil stream
---@return string? message
---@return string? code
function Server:accept(timeout_ms) end

---@return weft.promise
function Server:accept_async(timeout_ms) end

---@return true|nil
function Server:close() end

---@return string host_or_path
---@return integer? port
function Server:sockname() end

---@return integer
function Server:getfd() end

---@param ms number?
---@return weft.server
function Server:settimeout(ms) end

---@class weft.tcp
weft.tcp = {}

---@param host string
---@param port integer
---@param opts? { timeout?: number, family?: "inet"|"inet6", nodelay?: boolean }
---@return weft.stream|nil stream
---@return string? message
---@return string? code
function weft.tcp.connect(host, port, opts) end

---@return weft.promise
function weft.tcp.connect_async(host, port, opts) end

---@param host string? "*" or nil: every IPv4 address
---@param port integer 0 picks a free port
---@param opts? { backlog?: integer, reuseaddr?: boolean, reuseport?: boolean, v6only?: boolean, family?: "inet"|"inet6", nodelay?: boolean }
---@return weft.server|nil server
---@return string? message
---@return string? code
function weft.tcp.listen(host, port, opts) end

---@class weft.tls
weft.tls = {}

---@alias weft.tls_client_opts { cafile?: string, capath?: string, cert?: string, key?: string, verify?: boolean, servername?: string, alpn?: string[], handshake_timeout?: number, min_version?: "1.2"|"1.3", ciphers?: string, timeout?: number, family?: "inet"|"inet6", nodelay?: boolean }
---@alias weft.tls_server_opts { cert: string, key?: string, alpn?: string[], handshake_timeout?: number, min_version?: "1.2"|"1.3", ciphers?: string, client_cafile?: string, backlog?: integer, reuseaddr?: boolean, reuseport?: boolean, v6only?: boolean, family?: "inet"|"inet6", nodelay?: boolean }

---Connects and completes a TLS handshake, verifying the server against the
---system store (or `cafile` / `capath`) and the name given.
---@param host string
---@param port integer
---@param opts? weft.tls_client_opts
---@return weft.stream|nil stream
---@return string? message
---@return string? code
function weft.tls.connect(host, port, opts) end

---@return weft.promise
function weft.tls.connect_async(host, port, opts) end

---A TLS server: its accept returns streams that finished their handshake.
---@param host string?
---@param port integer
---@param opts weft.tls_server_opts
---@return weft.server|nil server
---@return string? message
---@return string? code
function weft.tls.listen(host, port, opts) end

---Starts TLS on an open stream (STARTTLS); `opts.server` makes it the server side.
---@param stream weft.stream
---@param opts? weft.tls_client_opts|weft.tls_server_opts|{ server?: boolean }
---@return weft.stream|nil stream the same stream
---@return string? message
---@return string? code
function weft.tls.wrap(stream, opts) end

---@return weft.promise
function weft.tls.wrap_async(stream, opts) end

---@class weft.unix
weft.unix = {}

---@param path string
---@param opts? { timeout?: number }
---@return weft.stream|nil
function weft.unix.connect(path, opts) end

---@return weft.promise
function weft.unix.connect_async(path, opts) end

---@param path string
---@param opts? { backlog?: integer, unlink?: boolean }
---@return weft.server|nil
function weft.unix.listen(path, opts) end

---@class weft.dns
weft.dns = {}

---@class weft.addrinfo
---@field family "inet"|"inet6"
---@field address string
---@field port integer
---@field socktype "stream"|"dgram"
---@field canonname? string

---@param host string?
---@param service? string|integer
---@param opts? { family?: "inet"|"inet6", socktype?: "stream"|"dgram", passive?: boolean, canonname?: boolean }
---@return weft.addrinfo[]|nil list
---@return string? message
---@return string? code
function weft.dns.getaddrinfo(host, service, opts) end

---@return weft.promise
function weft.dns.getaddrinfo_async(host, service, opts) end

---@param address string
---@param port? integer
---@param opts? { numeric?: boolean }
---@return string|nil host
---@return string? service
function weft.dns.getnameinfo(address, port, opts) end

---@return weft.promise
function weft.dns.getnameinfo_async(address, port, opts) end

---@class weft.process_object
---@field pid integer
---@field stdin? weft.stream
---@field stdout? weft.stream
---@field stderr? weft.stream
local Process = {}

---Waits for the exit: the exit code, or nil and the name of the signal that
---ended it; nil, "timeout", "ETIMEDOUT" after `timeout_ms`.
---@param timeout_ms? number
---@return integer|nil code
---@return string? signal_or_message
function Process:wait(timeout_ms) end

---@return weft.promise
function Process:wait_async(timeout_ms) end

---@param sig? integer|string default "SIGTERM"
---@return true|nil ok
function Process:kill(sig) end

---Whether the running child keeps the loop alive (the default).
---@return weft.process_object
function Process:ref() end

---The running child no longer keeps the loop alive: weft.run returns
---without waiting for it (a `wait` still keeps the loop while it waits).
---@return weft.process_object
function Process:unref() end

---@alias weft.stdio "inherit"|"pipe"|"null"|weft.stream|file*|integer

---@class weft.spawn_opts
---@field [integer] string the command and its arguments
---@field stdin? weft.stdio
---@field stdout? weft.stdio
---@field stderr? weft.stdio
---@field env? table<string, string>
---@field cwd? string
---@field detached? boolean

---@class weft.process
weft.process = {}

---@param opts weft.spawn_opts
---@return weft.process_object|nil process
---@return string? message
---@return string? code
function weft.process.spawn(opts) end

---@class weft.run_result
---@field status integer|nil the exit code (nil: a signal ended it)
---@field signal string|nil
---@field stdout string
---@field stderr string
---@field stdout_dropped integer bytes past max_output, read and dropped
---@field stderr_dropped integer

---Runs argv to its end: its status and whole output.  Raises a timeout
---error after opts.timeout ms (the child gets SIGTERM, then SIGKILL).
---@param argv string[]
---@param opts? { input?: string, cwd?: string, env?: table<string, string>, timeout?: number, max_output?: integer }
---@return weft.run_result|nil result
---@return string? message
---@return string? code
function weft.process.run(argv, opts) end

---@class weft.fs_event
---@field path string the entry's path (in a watched directory) or the file's
---@field event "change"|"rename"

---A file or directory watcher; `for ev in w do ... end` iterates.
---@class weft.fswatch
local FsWatch = {}

---The next change, or nil, "timeout" / nil, "closed".
---@param timeout_ms? number
---@return weft.fs_event|nil event
---@return string? why
function FsWatch:next(timeout_ms) end

---@return weft.promise
function FsWatch:next_async(timeout_ms) end

---@return true|nil ok
function FsWatch:close() end

---Watches path (a file, or a directory's entries).  `coalesce`: the window
---in ms within which changes are one event per name (default 50).
---@param path string
---@param opts? { recursive?: boolean, coalesce?: integer }
---@return weft.fswatch|nil watcher
---@return string? message
---@return string? code
function weft.fs.watch(path, opts) end

---@return weft.promise
function weft.fs.watch_async(path, opts) end

---@class weft.udp_socket
local Udp = {}

---@param data string
---@param host string
---@param port integer
---@return true|nil ok
---@return string? message
---@return string? code
function Udp:sendto(data, host, port) end

---@param size? integer default 65536
---@param timeout_ms? number
---@return string|nil data
---@return string host_or_message
---@return integer|string port_or_code
function Udp:recvfrom(size, timeout_ms) end

---@return weft.promise
function Udp:sendto_async(data, host, port) end

---@return weft.promise
function Udp:recvfrom_async(size, timeout_ms) end

---@return string host
---@return integer port
function Udp:sockname() end

---@return true|nil
function Udp:close() end

---@return integer
function Udp:getfd() end

---@param ms number?
---@return weft.udp_socket
function Udp:settimeout(ms) end

---@param name string
---@param value boolean|integer
---@return true|nil
function Udp:setoption(name, value) end

---@class weft.udp
weft.udp = {}

---@param host string? "*" or nil: every IPv4 address
---@param port integer
---@param opts? { reuseaddr?: boolean, reuseport?: boolean, broadcast?: boolean, family?: "inet"|"inet6", v6only?: boolean }
---@return weft.udp_socket|nil socket
---@return string? message
---@return string? code
function weft.udp.bind(host, port, opts) end

---@class weft.file
local File = {}

---@param n integer
---@param offset? integer
---@return string|nil data
function File:read(n, offset) end

---@return string|nil data
function File:readall() end

---@param data string
---@param offset? integer
---@return weft.file|nil
function File:write(data, offset) end

---@param pos integer
---@return weft.file
function File:seek(pos) end

---@return weft.stat|nil
function File:stat() end

---@return weft.file|nil
function File:sync() end

---@return true|nil
function File:close() end

---@class weft.stat
---@field type "file"|"directory"|"link"|"fifo"|"socket"|"char"|"block"|"unknown"
---@field size integer
---@field mode integer
---@field mtime number
---@field atime number
---@field ctime number
---@field uid integer
---@field gid integer
---@field ino integer
---@field dev integer
---@field nlink integer

---@class weft.fs
weft.fs = {}

---@param path string
---@return string|nil data
---@return string? message
---@return string? code
function weft.fs.readfile(path) end

---@param path string
---@param data string
---@param opts? { atomic?: boolean, mode?: integer }
---@return true|nil
function weft.fs.writefile(path, data, opts) end

---@param path string
---@return weft.stat|nil
function weft.fs.stat(path) end

---@param path string
---@return weft.stat|nil
function weft.fs.lstat(path) end

---@param path string
---@param mode? integer
---@return true|nil
function weft.fs.mkdir(path, mode) end

---@return true|nil
function weft.fs.rename(from, to) end

---@return true|nil
function weft.fs.unlink(path) end

---@return true|nil
function weft.fs.rmdir(path) end

---@param path string
---@return string[]|nil names
function weft.fs.readdir(path) end

---@param path string
---@param mode? "r"|"w"|"a"|"r+"|"w+"|"a+"
---@param perm? integer
---@return weft.file|nil
function weft.fs.open(path, mode, perm) end

---@class weft.pool_object
local Pool = {}

---Runs `fn(...)` in a worker's own Lua state; a task of its results.  The
---job's error arrives as itself when it can cross (a table with the worker's
---traceback in its field `traceback`); cancelling the task cancels the job.
---@param fn function|string a function without upvalues but _ENV, or a dotted name
---@param ... any values that can cross threads
---@return weft.promise
function Pool:run(fn, ...) end

---Cancels queued jobs, lets running ones finish and waits for the threads
---without blocking the loop (a task suspends, the main chunk runs the loop).
---@return boolean closed false if it was closed already
function Pool:close() end

---@return integer
function Pool:threads() end

---@class weft.pool_opts
---@field max? integer threads at most (default: the CPU count)
---@field min? integer threads kept when idle (default 0)
---@field idle_ms? integer idle time before a thread beyond min leaves (default 5000)
---@field init? string a module each new worker requires first
---@field spin_us? integer how long a worker that finished a job watches for the next (default 50)

---A pool of worker threads, each with its own Lua state.
---@param opts? weft.pool_opts
---@return weft.pool_object
function weft.pool(opts) end

---@class weft.thread_channel
local TChannel = {}

---@param v any a value that can cross threads (nil too)
---@return true
function TChannel:send(v) end

---Takes the next value out of the channel: each value goes to one receiver.
---@param timeout_ms? number
---@return any value
---@return ("closed"|"timeout")? why
function TChannel:recv(timeout_ms) end

---@param v any
---@return boolean ok
---@return ("full"|"closed")? why
function TChannel:try_send(v) end

---@return any value
---@return ("empty"|"closed")? why
function TChannel:try_recv() end

---@return boolean
function TChannel:close() end

---@return integer
function TChannel:count() end

---@class weft.thread
weft.thread = {}

---`pool:run` on a default pool sized to the CPU count.
---@param fn function|string
---@param ... any
---@return weft.promise
function weft.thread.run(fn, ...) end

---@param capacity? integer nil: unbounded
---@return weft.thread_channel
function weft.thread.channel(capacity) end

---Registers `mt` as class `name` in this Lua state, so its instances cross
---threads (the receiver must register the same name).
---@generic T: table
---@param name string
---@param mt T
---@return T
function weft.thread.register(name, mt) end

---0 in the main thread, n in the n-th worker.
---@return integer
function weft.thread.id() end

---A pipe as two streams.
---@return weft.stream reader
---@return weft.stream writer
function weft.pipe() end

---Makes a stream of a descriptor or Lua file that can report readiness.
---@param fd weft.fd
---@param opts? { own?: boolean }
---@return weft.stream|nil stream
---@return string? message
---@return string? code
function weft.wrap(fd, opts) end

weft.POLLIN = 1
weft.POLLPRI = 2
weft.POLLOUT = 4
weft.POLLERR = 8
weft.POLLHUP = 16
weft.POLLNVAL = 32

---Calls `cb(fd, revents)` once when any of `events` is ready, or after
---`timeout_ms` with 0.  nil, "EBADF" / "EPERM" for a bad descriptor.
---@param fd weft.fd
---@param events integer
---@param timeout_ms number?
---@param cb fun(fd: weft.fd, revents: integer)
---@return weft.id|nil id
---@return ("EBADF"|"EPERM")? code
function weft.poll(fd, events, timeout_ms, cb) end

---Waits on many descriptors; returns { [fd] = revents } of those ready.
---@param set table<weft.fd, integer>
---@param timeout_ms? number
---@return table<weft.fd, integer>|nil ready
---@return ("EBADF"|"EPERM")? code
function weft.poll_any(set, timeout_ms) end


---LuaSocket's API (version 3) over weft's streams: pass `weft.socket.tcp`
---as `create` to socket.http, socket.smtp, socket.ftp.
---@class weft.socket
weft.socket = {}

---A LuaSocket-compatible socket: class "tcp{master}", "tcp{client}",
---"tcp{server}", "udp{unconnected}" or "udp{connected}".
---@class weft.luasocket
---@field class string
local LuaSocket = {}

---@return integer|nil one 1
---@return string? err
function LuaSocket:connect(host, port) end
---@return integer|nil one
---@return string? err
function LuaSocket:bind(host, port) end
---@param backlog? integer default 32
---@return integer|nil one
---@return string? err
function LuaSocket:listen(backlog) end
---@return weft.luasocket|nil client
---@return string? err "timeout", "closed", ...
function LuaSocket:accept() end
---@param data string
---@param i? integer
---@param j? integer
---@return integer|nil last the index of the last byte sent
---@return string? err
---@return integer? last_before_error
function LuaSocket:send(data, i, j) end
---@param pattern? "*l"|"l"|"*a"|"a"|integer
---@param prefix? string
---@return string|nil data
---@return string? err
---@return string? partial
function LuaSocket:receive(pattern, prefix) end
---@param t? number seconds; nil or negative: block; 0: poll
---@param mode? "b"|"t"
---@return integer one
function LuaSocket:settimeout(t, mode) end
---@return number block
---@return number total
function LuaSocket:gettimeout() end
---@return integer one
function LuaSocket:close() end
---@param how? "both"|"send"|"receive"
---@return integer|nil one
---@return string? err
function LuaSocket:shutdown(how) end
---@return string|nil address
---@return integer|string port_or_err
---@return string? family
function LuaSocket:getpeername() end
---@return string|nil address
---@return integer|string port_or_err
---@return string? family
function LuaSocket:getsockname() end
---@return integer|nil one
---@return string? err
function LuaSocket:setoption(name, value) end
---@return any value
function LuaSocket:getoption(name) end
---@return integer fd -1 without a descriptor
function LuaSocket:getfd() end
---@return integer|nil one
function LuaSocket:setfd(fd) end
---@return boolean
function LuaSocket:dirty() end
---@return "inet4"|"inet6"
function LuaSocket:getfamily() end
---@return integer received
---@return integer sent
---@return number age seconds
function LuaSocket:getstats() end
---@return integer one
function LuaSocket:setstats(received, sent, age) end
---@return integer|nil one
---@return string? err
function LuaSocket:setsockname(host, port) end
---@return integer|nil one
---@return string? err
function LuaSocket:setpeername(host, port) end
---@return integer|nil bytes
---@return string? err
function LuaSocket:sendto(data, host, port) end
---@return string|nil datagram
---@return string? host_or_err
---@return integer? port
function LuaSocket:receivefrom(size) end

---@return weft.luasocket|nil master
---@return string? err
function weft.socket.tcp() end
---@return weft.luasocket|nil master
function weft.socket.tcp4() end
---@return weft.luasocket|nil master
function weft.socket.tcp6() end
---@return weft.luasocket|nil udp
function weft.socket.udp() end
---@return weft.luasocket|nil udp
function weft.socket.udp4() end
---@return weft.luasocket|nil udp
function weft.socket.udp6() end
---@param family? "inet"|"inet6"
---@return weft.luasocket|nil client
---@return string? err
function weft.socket.connect(host, port, locaddr, locport, family) end
---@return weft.luasocket|nil client
function weft.socket.connect4(host, port, locaddr, locport) end
---@return weft.luasocket|nil client
function weft.socket.connect6(host, port, locaddr, locport) end
---@param backlog? integer default 32
---@return weft.luasocket|nil server
---@return string? err
function weft.socket.bind(host, port, backlog) end
---@param recvt? table
---@param sendt? table
---@param timeout? number seconds
---@return table readable
---@return table writable
---@return string? err "timeout"
function weft.socket.select(recvt, sendt, timeout) end
---A `create` function for socket.http & co whose sockets become TLS
---clients on connect (weft.tls.wrap's options).
---@param opts? table
---@return fun(): weft.luasocket
function weft.socket.tls(opts) end
---@param seconds number
function weft.socket.sleep(seconds) end
---@return number seconds since the epoch
function weft.socket.gettime() end

return weft
