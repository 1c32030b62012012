# Builds sae/core.so from csrc/ and runs the busted specs.
#   make            build build/sae/core.so
#   make test       run the specs under Lua 5.4 (ends with "N passed, N failed")
#   make asan       build with AddressSanitizer and UBSan into build-asan/
#                   and run the specs against that build
#   make bench      print speed ratios against PyTorch and OpenBLAS sgemm
#   make install    copy the Lua modules and core.so under $(DESTDIR)$(PREFIX)

LUA ?= lua5.4
LUA_VERSION ?= 5.4
LUA_INCDIR ?= /usr/include/lua$(LUA_VERSION)
OPENBLAS_INCDIR ?= /usr/include/x86_64-linux-gnu
OPENBLAS_LIBDIR ?= /usr/lib/x86_64-linux-gnu
BLAS_LIBS ?= -lopenblas
CC ?= cc
# OPTFLAGS and ARCHFLAGS stay apart from CFLAGS so that a CFLAGS given by
# luarocks ("-O2 -fPIC") adds to them instead of dropping -march=native,
# which the toy-model and SAE kernels need to vectorise. A build for other
# machines sets ARCHFLAGS to a portable target such as -march=x86-64-v2.
OPTFLAGS ?= -O2 -fno-math-errno
ARCHFLAGS ?= -march=native
CFLAGS ?=
# -Wno-psabi: GCC notes that passing wide vector types between static
# functions would change the ABI without AVX-512; nothing crosses the
# library's boundary that way.
WARNINGS = -Wall -Wextra -Wno-psabi
LIBFLAG ?= -shared
OPENMP ?= -fopenmp
# Keeps core.so (and so libgomp) mapped when lua_close unloads the module;
# otherwise an idle OpenMP worker thread can run unmapped code at exit.
NODELETE ?= -Wl,-z,nodelete
PREFIX ?= /usr/local
LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
BUSTED ?= $(LUA) /usr/bin/busted

SRC = $(wildcard csrc/*.c)
HDR = $(wildcard csrc/*.h)
BUILD ?= build
OBJ = $(SRC:csrc/%.c=$(BUILD)/obj/%.o)
ALL_CFLAGS = -std=gnu11 -fPIC $(OPTFLAGS) $(ARCHFLAGS) $(CFLAGS) $(WARNINGS) \
	$(OPENMP) \
	-I$(LUA_INCDIR) -I$(OPENBLAS_INCDIR)

TEST_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" \
	LUA_CPATH="$(BUILD)/?.so;;" OMP_WAIT_POLICY=passive

.PHONY: all test asan bench install clean

all: $(BUILD)/sae/core.so

$(BUILD)/obj/%.o: csrc/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/sae/core.so: $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(OPENMP) $(NODELETE) $(LDFLAGS) -o $@ $(OBJ) \
		-L$(OPENBLAS_LIBDIR) $(BLAS_LIBS) -lm

test: all
	$(TEST_ENV) $(BUSTED) --cpath="$(BUILD)/?.so" \
		--output=spec/plain_output.lua spec

ASAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" all
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) BUILD=build-asan test

bench: all
	$(TEST_ENV) $(LUA) bench/run.lua

install: all
	mkdir -p $(DESTDIR)$(LUADIR) $(DESTDIR)$(LIBDIR)/sae
	cp -R lua/sae $(DESTDIR)$(LUADIR)/
	cp $(BUILD)/sae/core.so $(DESTDIR)$(LIBDIR)/sae/

clean:
	rm -rf build build-asan
