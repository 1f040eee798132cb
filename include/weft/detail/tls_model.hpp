// WEFT_TLS: the TLS model of every thread_local in weft.
//
// libweft.a is compiled as position-independent code (meson's default b_staticpic), and for
// PIC the compiler assumes the general-dynamic model: each access to a thread_local is a call
// to __tls_get_addr. The scheduler touches its thread_locals on every spawn, wake and frame
// allocation, and that call was 9% of chained_spawn's profile. initial-exec makes each access
// one load through the GOT plus an %fs-relative load.
//
// The cost of initial-exec: the variables must live in the static TLS block. That is always
// so in an executable (which is how a static library is meant to be used). A shared object
// that links libweft.a and is loaded with dlopen() draws on glibc's static TLS surplus
// instead; weft's thread_locals take a few dozen bytes of it.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_TLS [[gnu::tls_model("initial-exec")]]
#else
#define WEFT_TLS
#endif
