/*
 * The idle engine: it watches the launcher (policy/ depends on launcher/,
 * never the reverse) and acts on instances only through the launcher's
 * public calls. On a timer it gathers what shows each instance is in use
 * and asks policy_idle; before a boot it admits or refuses (boot rate
 * limits, capacity, with eviction); it keeps warm pools (shells, paused
 * guests). It registers itself with launcher_add_hooks and follows every
 * launcher_reload by itself.
 */
#ifndef BECKON_POLICY_ENGINE_H
#define BECKON_POLICY_ENGINE_H

struct conf;
struct event_base;
struct launcher;
struct engine;

/* The engine for L under CONF: warms what CONF asks at once. NULL on failure (logged). */
struct engine *engine_new(struct event_base *base, struct launcher *l, const struct conf *conf);
/* Before launcher_free: unhooks, removes its firewall rule. NULL is fine. */
void engine_free(struct engine *e);

#endif
