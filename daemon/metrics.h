/* Prometheus text format at /metrics on metrics_listen. */
#ifndef BECKON_METRICS_H
#define BECKON_METRICS_H

struct event_base;
struct conf_addr;
struct launcher;
struct resolver;
struct metrics;

/* Listen on ADDR. NULL on failure (logged). */
struct metrics *metrics_new(struct event_base *base, const struct conf_addr *addr,
                            struct launcher *l, struct resolver *r);

/* Stop listening and free. NULL is fine. */
void metrics_free(struct metrics *m);

#endif
