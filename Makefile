# A thin wrapper over scripts/deps.sh and CMake.  `make demo` and
# `make test` are the two commands the README gives a new user.
BUILD ?= build
SAN_BUILD ?= build-asan
JOBS ?= 2
LUA_ENV = LUA_CPATH='$(BUILD)/lua/?.so;;' LUA_PATH='$(BUILD)/lua/?.lua;$(BUILD)/lua/?/init.lua;;'

.PHONY: all deps build build-asan demo test bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

# The same tree under ASan + UBSan, built with clang (so both compilers
# keep -Werror clean).
build-asan: deps
	CC=clang cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j$(JOBS)

demo: build
	$(LUA_ENV) lua5.4 examples/demo.lua

test: build build-asan
	scripts/test.sh $(BUILD)
	scripts/valgrind.sh $(BUILD)
	scripts/test.sh $(SAN_BUILD)

bench: build
	bench/timers/run.sh
	bench/fibers/run.sh
	bench/tasks/run.sh
	bench/net/run.sh
	bench/tls/run.sh
	bench/socket/run.sh
	bench/threads/run.sh

clean:
	rm -rf $(BUILD) $(SAN_BUILD) build.luarocks
