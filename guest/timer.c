/*
 * timer.c: the TSC is our clock; its rate comes from kvmclock when KVM
 * offers it (one MSR write, no waiting), otherwise from counting it against
 * the LAPIC timer, which QEMU (TCG and KVM alike) runs at 1 GHz.  The LAPIC
 * timer in one-shot mode wakes us for the earliest TCP deadline; with no
 * deadline nothing ticks, so an idle guest costs its host nothing.
 */
#include "apic.h"
#include "cpu.h"
#include "timer.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define LAPIC_HZ 1000000000ULL
#define CAL_TICKS 200000     /* 200 us of LAPIC time when calibrating by hand */
#define MAX_SLEEP_US 4000000 /* the 32-bit count at 1 GHz holds 4.29 s */

extern uint64_t boot_tsc; /* boot.S */

struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
};

static struct pvclock timer_pvclock __attribute__((aligned(64)));
static uint64_t timer_mult;  /* microseconds per TSC tick, as a 32.32 fixed-point */
static uint64_t timer_armed; /* the deadline programmed, 0 if none */
static volatile bool timer_fired;

static uint64_t timer_hz_kvmclock(void)
{
	uint32_t r[4];
	uint64_t hz;

	cpuid(0x40000000, 0, r);
	if (r[1] != 0x4b4d564b || r[0] < 0x40000001) /* "KVMK" */
		return 0;
	cpuid(0x40000001, 0, r);
	if (!(r[0] & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uintptr_t)&timer_pvclock | 1);
	barrier();
	if (!timer_pvclock.tsc_to_system_mul)
		return 0;
	/* ns = (tsc << shift) * mul >> 32, so hz = 1e9 * 2^32 / mul / 2^shift. */
	hz = (1000000000ULL << 32) / timer_pvclock.tsc_to_system_mul;
	if (timer_pvclock.tsc_shift > 0)
		hz >>= timer_pvclock.tsc_shift;
	else
		hz <<= -timer_pvclock.tsc_shift;
	/* Left registered: KVM's occasional updates cost nothing, a wrmsr is a VM exit. */
	return hz;
}

/*
 * Without kvmclock (TCG, Firecracker without it) the LAPIC timer counts down
 * from 0xffffffff while the rest of bring-up runs; timer_calibrate() then
 * compares it with the TSC, waiting only if less than CAL_TICKS went by.
 */
static uint64_t timer_cal_tsc;

static void timer_cal_start(void)
{
	apic_timer_start(0xffffffff);
	timer_cal_tsc = rdtsc();
}

static uint64_t timer_hz_lapic(void)
{
	uint64_t t1;
	uint32_t left;

	while (0xffffffff - apic_timer_count() < CAL_TICKS)
		;
	left = apic_timer_count();
	t1 = rdtsc();
	apic_timer_start(0);
	return (t1 - timer_cal_tsc) * LAPIC_HZ / (0xffffffffULL - left);
}

static void timer_set_hz(uint64_t hz)
{
	if (hz < 1000000)
		hz = 1000000000; /* nonsense: assume 1 GHz rather than divide by 0 */
	timer_mult = (1000000ULL << 32) / hz;
}

__attribute__((interrupt)) static void timer_isr(struct cpu_frame *f)
{
	(void)f;
	timer_fired = true;
	apic_eoi();
}

void timer_init(void)
{
	uint64_t hz = timer_hz_kvmclock();

	cpu_set_vector(VEC_TIMER, timer_isr);
	if (hz)
		timer_set_hz(hz);
	else
		timer_cal_start();
}

void timer_calibrate(void)
{
	if (!timer_mult)
		timer_set_hz(timer_hz_lapic());
}

uint64_t timer_now_us(void)
{
	return (uint64_t)(((unsigned __int128)(rdtsc() - boot_tsc) * timer_mult) >> 32);
}

void timer_arm(uint64_t due_us)
{
	uint64_t now, d;

	/*
	 * Only ever move the alarm earlier: a later deadline is served by the
	 * earlier alarm firing, finding nothing due and re-arming.  That saves
	 * an MMIO write (a VM exit) on every ACK that pushes a timer back.
	 */
	if (!due_us || (timer_armed && timer_armed <= due_us))
		return;
	timer_armed = due_us;
	now = timer_now_us();
	d = due_us > now ? due_us - now : 1;
	if (d > MAX_SLEEP_US)
		d = MAX_SLEEP_US;
	apic_timer_start((uint32_t)(d * 1000));
}

bool timer_take_fired(void)
{
	bool f = timer_fired;

	if (f) {
		timer_fired = false;
		timer_armed = 0; /* the one-shot is spent */
	}
	return f;
}
