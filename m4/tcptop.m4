# tcptop.m4 - dependency checks for tcptop's configure.
#
# Every check prints "yes (...)" or "no (reason)" and records its outcome in
# tcptop_<name>_status for the summary at the end of configure. Required
# dependencies are collected in tcptop_missing and reported all at once by
# TCPTOP_FAIL_IF_MISSING, so one configure run names everything to install.

# TCPTOP_REQUIRE(WHAT, HINT)
# --------------------------
# Remember that a required dependency is missing.
AC_DEFUN([TCPTOP_REQUIRE], [
tcptop_missing="${tcptop_missing}
    $1: $2"
])

# TCPTOP_FAIL_IF_MISSING
# ----------------------
AC_DEFUN([TCPTOP_FAIL_IF_MISSING], [
AS_IF([test -n "$tcptop_missing"], [
	AC_MSG_ERROR([required dependencies are missing:$tcptop_missing])
])
])

# TCPTOP_CHECK_PKG(PREFIX, MODULE-SPEC, FUNCTION, HEADER, LIBRARY, HINT,
#                  [PROLOGUE])
# -----------------------------------------------------------------------
# Look a library up with pkg-config (MODULE-SPEC, e.g. "libbpf >= 1.0"),
# falling back to HEADER plus -lLIBRARY when pkg-config has no .pc file
# (LIBRARY empty: no fallback). User-set PREFIX_CFLAGS/PREFIX_LIBS win over
# both. In every case a call to FUNCTION, declared by HEADER after the
# includes in PROLOGUE, must link.
# Sets PREFIX_CFLAGS, PREFIX_LIBS, tcptop_have_PREFIX (yes/no) and
# tcptop_PREFIX_status; prints one "checking" line.
AC_DEFUN([TCPTOP_CHECK_PKG], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_ARG_VAR([$1][_CFLAGS], [C compiler flags for $2, overriding pkg-config])
AC_ARG_VAR([$1][_LIBS], [linker flags for $2, overriding pkg-config])
m4_pushdef([tcptop_includes], [$7
@%:@include <$4>])
AC_MSG_CHECKING([for $2])
tcptop_have_$1=no
tcptop_how=
tcptop_spec="$2"
tcptop_mod=${tcptop_spec%% *}
if test -n "${$1_CFLAGS}${$1_LIBS}"; then
	tcptop_how="\$$1_CFLAGS/\$$1_LIBS as given"
	tcptop_have_$1=maybe
elif test -n "$PKG_CONFIG" && $PKG_CONFIG --exists "$2" 2>&AS_MESSAGE_LOG_FD; then
	$1_CFLAGS=`$PKG_CONFIG --cflags "$2"`
	$1_LIBS=`$PKG_CONFIG --libs "$2"`
	tcptop_how="version `$PKG_CONFIG --modversion $tcptop_mod`"
	tcptop_have_$1=maybe
elif test -n "$PKG_CONFIG" && $PKG_CONFIG --exists $tcptop_mod 2>/dev/null; then
	tcptop_$1_status="no (found version `$PKG_CONFIG --modversion $tcptop_mod`, need $2; $6)"
elif test -n "$5"; then
	AC_PREPROC_IFELSE([AC_LANG_SOURCE([tcptop_includes])],
		[tcptop_how="-l$5 without pkg-config"
		 $1_LIBS="-l$5"
		 tcptop_have_$1=maybe],
		[tcptop_$1_status="no (neither $tcptop_mod.pc nor <$4> found; $6)"])
else
	AS_IF([test -z "$PKG_CONFIG"],
		[tcptop_$1_status="no (pkg-config not found; install pkg-config)"],
		[tcptop_$1_status="no ($tcptop_mod.pc not found by pkg-config; $6)"])
fi
if test "$tcptop_have_$1" = maybe; then
	tcptop_save_CFLAGS=$CFLAGS
	tcptop_save_LIBS=$LIBS
	CFLAGS="$CFLAGS ${$1_CFLAGS}"
	LIBS="${$1_LIBS} $LIBS"
	AC_LINK_IFELSE([AC_LANG_PROGRAM([tcptop_includes],
		[[void (*volatile fn)(void) = (void (*)(void))&$3;
		  return fn == 0;]])],
		[tcptop_have_$1=yes
		 tcptop_$1_status="yes ($tcptop_how)"],
		[tcptop_have_$1=no
		 tcptop_$1_status="no ($tcptop_how, but $3() does not link; see config.log)"])
	CFLAGS=$tcptop_save_CFLAGS
	LIBS=$tcptop_save_LIBS
fi
AC_MSG_RESULT([$tcptop_$1_status])
AC_SUBST([$1][_CFLAGS])
AC_SUBST([$1][_LIBS])
m4_popdef([tcptop_includes])
])

# TCPTOP_PROG(VARIABLE, DESCRIPTION, PROGRAMS, HINT)
# --------------------------------------------------
# Find the first of PROGRAMS in $PATH plus the sbin directories (bpftool
# lives in /usr/sbin, which a non-root PATH lacks). Sets VARIABLE to the
# absolute path or to empty, and tcptop_VARIABLE_status.
AC_DEFUN([TCPTOP_PROG], [
AC_ARG_VAR([$1], [$2])
AC_PATH_PROGS([$1], [$3], [], [$PATH$PATH_SEPARATOR/usr/local/sbin$PATH_SEPARATOR/usr/sbin$PATH_SEPARATOR/sbin])
AS_IF([test -n "${$1}"],
	[tcptop_$1_status="${$1}"],
	[tcptop_$1_status="no (none of: $3; $4)"])
])

# TCPTOP_BPF_ARCH
# ---------------
# Map the autoconf host CPU to the kernel's arch name, as bpf_tracing.h
# wants it in -D__TARGET_ARCH_<arch> to read pt_regs. Sets BPF_TARGET_ARCH.
AC_DEFUN([TCPTOP_BPF_ARCH], [
AC_REQUIRE([AC_CANONICAL_HOST])
AC_MSG_CHECKING([for the BPF target arch of $host_cpu])
AS_CASE([$host_cpu],
	[x86_64|i?86], [BPF_TARGET_ARCH=x86],
	[aarch64*], [BPF_TARGET_ARCH=arm64],
	[arm*], [BPF_TARGET_ARCH=arm],
	[powerpc*|ppc*], [BPF_TARGET_ARCH=powerpc],
	[s390*], [BPF_TARGET_ARCH=s390],
	[riscv*], [BPF_TARGET_ARCH=riscv],
	[loongarch*], [BPF_TARGET_ARCH=loongarch],
	[mips*], [BPF_TARGET_ARCH=mips],
	[BPF_TARGET_ARCH=])
AS_IF([test -n "$BPF_TARGET_ARCH"],
	[tcptop_arch_status="$BPF_TARGET_ARCH"],
	[tcptop_arch_status="no (bpf_tracing.h has no pt_regs layout for $host_cpu)"
	 TCPTOP_REQUIRE([BPF target arch], [$host_cpu is not supported])])
AC_MSG_RESULT([$tcptop_arch_status])
AC_SUBST([BPF_TARGET_ARCH])
])

# TCPTOP_CHECK_BPF_TOOLCHAIN
# --------------------------
# clang must compile for -target bpf and find libbpf's BPF-side headers;
# bpftool must turn the object into a skeleton. Both are proven on a tiny
# program, the same way the Makefile builds bpf/tcptop.bpf.c.
AC_DEFUN([TCPTOP_CHECK_BPF_TOOLCHAIN], [
AC_REQUIRE([TCPTOP_BPF_ARCH])
TCPTOP_PROG([CLANG], [clang used to compile the BPF program],
	[clang clang-20 clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 clang-13 clang-12 clang-11],
	[install clang])
TCPTOP_PROG([BPFTOOL], [bpftool used to generate the BPF skeleton],
	[bpftool], [install bpftool])
TCPTOP_PROG([LLVM_STRIP], [llvm-strip used to drop DWARF (not BTF) from the BPF object],
	[llvm-strip llvm-strip-20 llvm-strip-19 llvm-strip-18 llvm-strip-17 llvm-strip-16 llvm-strip-15 llvm-strip-14 llvm-strip-13 llvm-strip-12 llvm-strip-11],
	[install llvm; the BPF object keeps its DWARF])

# The types bpf_helpers.h expects from vmlinux.h or bpf/kernel.h.
cat > conftest.bpf.c <<_TCPTOP_EOF
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
@%:@include <bpf/bpf_helpers.h>
char LICENSE@<:@@:>@ SEC("license") = "GPL";
SEC("socket") int conftest(void *ctx) { return 0; }
_TCPTOP_EOF

AC_MSG_CHECKING([whether clang can build BPF programs])
tcptop_clang_bpf=no
if test -z "$CLANG"; then
	tcptop_clang_bpf_status="no (clang not found; install clang)"
elif ! echo 'int x;' | $CLANG -target bpf -x c -c - -o conftest.o >&AS_MESSAGE_LOG_FD 2>&1; then
	tcptop_clang_bpf_status="no ($CLANG has no BPF target; see config.log)"
elif ! $CLANG -g -O2 -target bpf -D__TARGET_ARCH_$BPF_TARGET_ARCH -Wall $LIBBPF_CFLAGS -c conftest.bpf.c -o conftest.tmp.bpf.o >&AS_MESSAGE_LOG_FD 2>&1; then
	tcptop_clang_bpf_status="no ($CLANG -target bpf cannot compile with <bpf/bpf_helpers.h>; install libbpf-dev; see config.log)"
else
	tcptop_clang_bpf=yes
	tcptop_clang_bpf_status="yes ($CLANG, -target bpf -D__TARGET_ARCH_$BPF_TARGET_ARCH)"
fi
AC_MSG_RESULT([$tcptop_clang_bpf_status])
AS_IF([test "$tcptop_clang_bpf" != yes],
	[TCPTOP_REQUIRE([clang with the BPF target], [$tcptop_clang_bpf_status])])

AC_MSG_CHECKING([whether bpftool can generate a skeleton])
tcptop_bpftool=no
if test -z "$BPFTOOL"; then
	tcptop_bpftool_status="no (bpftool not found; install bpftool)"
elif ! $BPFTOOL version >&AS_MESSAGE_LOG_FD 2>&1; then
	tcptop_bpftool_status="no ($BPFTOOL does not run; see config.log)"
elif test "$tcptop_clang_bpf" != yes; then
	tcptop_bpftool=yes
	tcptop_bpftool_status="yes ($BPFTOOL; skeleton generation untested without clang)"
elif ! { $BPFTOOL gen object conftest.bpf.o conftest.tmp.bpf.o &&
	 $BPFTOOL gen skeleton conftest.bpf.o name conftest > conftest.skel.h; } >&AS_MESSAGE_LOG_FD 2>&1; then
	tcptop_bpftool_status="no ($BPFTOOL gen object/skeleton failed; see config.log)"
else
	tcptop_bpftool=yes
	tcptop_bpftool_status="yes ($BPFTOOL)"
fi
AC_MSG_RESULT([$tcptop_bpftool_status])
AS_IF([test "$tcptop_bpftool" != yes],
	[TCPTOP_REQUIRE([bpftool], [$tcptop_bpftool_status])])
rm -f conftest.bpf.c conftest.tmp.bpf.o conftest.bpf.o conftest.skel.h conftest.o
])

# TCPTOP_CHECK_COLLECTD
# ---------------------
# collectd ships no .pc file; Debian's collectd-dev puts the daemon's
# headers under /usr/include/collectd. They include each other as
# "collectd/core/...", so the parent directory is searched as well, and they
# need -DHAVE_CONFIG_H to pull in collectd's own config.h.
AC_DEFUN([TCPTOP_CHECK_COLLECTD], [
AC_ARG_WITH([collectd-include],
	[AS_HELP_STRING([--with-collectd-include=DIR],
		[collectd plugin headers (containing core/daemon/plugin.h) @<:@/usr/include/collectd@:>@])],
	[], [with_collectd_include=/usr/include/collectd])
AC_ARG_WITH([collectd-plugindir],
	[AS_HELP_STRING([--with-collectd-plugindir=DIR],
		[install tcptop.so into DIR, collectd's PluginDir @<:@/usr/lib/collectd@:>@])],
	[], [with_collectd_plugindir=/usr/lib/collectd])

COLLECTD_INCLUDE=$with_collectd_include
COLLECTD_PLUGINDIR=$with_collectd_plugindir
AS_CASE([$COLLECTD_INCLUDE], [yes|no|""],
	[AC_MSG_ERROR([--with-collectd-include needs a directory])])
AS_CASE([$COLLECTD_PLUGINDIR], [yes|no|""],
	[AC_MSG_ERROR([--with-collectd-plugindir needs a directory])])

# -isystem: the daemon's headers are not ours to keep warning-free, and
# their config.h redefines PACKAGE_* from tcptop_config.h.
COLLECTD_CPPFLAGS="-isystem $COLLECTD_INCLUDE"
tcptop_parent=`AS_DIRNAME(["$COLLECTD_INCLUDE"])`
AS_CASE([$tcptop_parent], [/usr/include|/usr/include/], [],
	[COLLECTD_CPPFLAGS="$COLLECTD_CPPFLAGS -isystem $tcptop_parent"])

AC_MSG_CHECKING([for collectd plugin headers])
tcptop_collectd=no
if test ! -f "$COLLECTD_INCLUDE/core/daemon/plugin.h"; then
	tcptop_collectd_status="no ($COLLECTD_INCLUDE/core/daemon/plugin.h not found; install collectd-dev or use --with-collectd-include=DIR)"
else
	tcptop_save_CPPFLAGS=$CPPFLAGS
	CPPFLAGS="$CPPFLAGS -DHAVE_CONFIG_H $COLLECTD_CPPFLAGS"
	AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[
#include "core/daemon/collectd.h"
#include "core/daemon/plugin.h"
#include "core/utils/common/common.h"
]], [[
value_list_t vl = VALUE_LIST_INIT;
char name[DATA_MAX_NAME_LEN];
sstrncpy(name, "tcptop", sizeof(name));
return plugin_dispatch_values(&vl);
]])],
	[tcptop_collectd=yes
	 tcptop_collectd_status="yes ($COLLECTD_INCLUDE)"],
	[tcptop_collectd_status="no (core/daemon/plugin.h in $COLLECTD_INCLUDE does not compile with -DHAVE_CONFIG_H; see config.log)"])
	CPPFLAGS=$tcptop_save_CPPFLAGS
fi
AC_MSG_RESULT([$tcptop_collectd_status])
AS_IF([test "$tcptop_collectd" != yes],
	[TCPTOP_REQUIRE([collectd headers], [$tcptop_collectd_status])])

# The daemon's bundled plugins (logfile, csv, rrdtool), which the
# end-to-end tests and tests/run-plugin.sh load next to tcptop.
AC_MSG_CHECKING([for collectd's bundled plugins])
COLLECTD_BUNDLED_PLUGINDIR=
for tcptop_d in "$COLLECTD_PLUGINDIR" /usr/lib/collectd /usr/lib64/collectd /usr/local/lib/collectd; do
	AS_IF([test -f "$tcptop_d/logfile.so"], [COLLECTD_BUNDLED_PLUGINDIR=$tcptop_d; break])
done
AS_IF([test -n "$COLLECTD_BUNDLED_PLUGINDIR"],
	[tcptop_bundled_status=$COLLECTD_BUNDLED_PLUGINDIR],
	[tcptop_bundled_status="no (logfile.so not found; install collectd-core; end-to-end tests will skip)"])
AC_MSG_RESULT([$tcptop_bundled_status])

# Only the end-to-end tests need the daemon; they skip without it.
TCPTOP_PROG([COLLECTD], [collectd daemon run by the end-to-end tests],
	[collectd], [install collectd-core; end-to-end tests will skip])
AC_MSG_CHECKING([for collectd's types.db])
COLLECTD_TYPESDB=
for tcptop_f in /usr/share/collectd/types.db /usr/local/share/collectd/types.db; do
	AS_IF([test -f "$tcptop_f"], [COLLECTD_TYPESDB=$tcptop_f; break])
done
AS_IF([test -n "$COLLECTD_TYPESDB"],
	[tcptop_typesdb_status=$COLLECTD_TYPESDB],
	[tcptop_typesdb_status="no (install collectd-core; end-to-end tests will skip)"])
AC_MSG_RESULT([$tcptop_typesdb_status])

AC_SUBST([COLLECTD_INCLUDE])
AC_SUBST([COLLECTD_CPPFLAGS])
AC_SUBST([COLLECTD_PLUGINDIR])
AC_SUBST([COLLECTD_BUNDLED_PLUGINDIR])
AC_SUBST([COLLECTD_TYPESDB])
])

# TCPTOP_ADD_CFLAG(VARIABLE, FLAG)
# --------------------------------
# Append FLAG to VARIABLE if the C compiler accepts it without a warning.
AC_DEFUN([TCPTOP_ADD_CFLAG], [
AC_MSG_CHECKING([whether $CC accepts $2])
tcptop_save_CFLAGS=$CFLAGS
CFLAGS="$CFLAGS -Werror $2"
AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
	[$1="${$1:+${$1} }$2"; AC_MSG_RESULT([yes])],
	[AC_MSG_RESULT([no])])
CFLAGS=$tcptop_save_CFLAGS
])

# TCPTOP_EXPAND(VARIABLE, VALUE)
# ------------------------------
# Expand ${prefix}-style references in VALUE for display.
AC_DEFUN([TCPTOP_EXPAND], [
tcptop_save_prefix=$prefix
tcptop_save_exec_prefix=$exec_prefix
test "x$prefix" = xNONE && prefix=$ac_default_prefix
test "x$exec_prefix" = xNONE && exec_prefix=$prefix
$1=$2
tcptop_i=0
while :; do
	case ${$1} in
	*\@S|@*) ;;
	*) break ;;
	esac
	tcptop_i=`expr $tcptop_i + 1`
	test $tcptop_i -gt 10 && break
	eval $1=\"${$1}\"
done
prefix=$tcptop_save_prefix
exec_prefix=$tcptop_save_exec_prefix
])
