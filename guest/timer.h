/* timer.h: time since entry from the TSC, and one deadline on the LAPIC timer. */
#ifndef GUEST_TIMER_H
#define GUEST_TIMER_H

#include "lib.h"

/* Hook the timer vector; take the TSC rate from kvmclock, else start measuring it. */
void timer_init(void);
/* Finish measuring the TSC rate against the LAPIC timer (if kvmclock did not give it). */
void timer_calibrate(void);
/* Microseconds since the first instruction of boot.S. */
uint64_t timer_now_us(void);
/* Ask for a wake-up by due (microseconds since entry); 0 means none is needed.
 * The alarm may come early: callers check their own deadlines. */
void timer_arm(uint64_t due_us);
/* True (once) if the timer interrupt fired since the last call. */
bool timer_take_fired(void);

#endif
