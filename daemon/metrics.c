#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#include "conf.h"
#include "launcher.h"
#include "log.h"
#include "metrics.h"
#include "resolver.h"

struct metrics {
	struct evhttp *http;
	struct launcher *launcher;
	struct resolver *resolver;
};

static const char *metrics_rcode_names[16] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",  "RCODE11",  "RCODE12", "RCODE13", "RCODE14",  "RCODE15"};

/* Response rate limiting (UDP) and the TCP connection limits. */
static void metrics_dns_limits(const struct resolver_stats *st, struct evbuffer *out)
{
	evbuffer_add_printf(
	    out,
	    "# HELP beckon_dns_rrl_total UDP responses over the rate limit: dropped, or "
	    "slipped (sent truncated).\n# TYPE beckon_dns_rrl_total counter\n"
	    "beckon_dns_rrl_total{action=\"dropped\"} %llu\n"
	    "beckon_dns_rrl_total{action=\"slipped\"} %llu\n",
	    (unsigned long long)st->rrl_dropped, (unsigned long long)st->rrl_slipped);
	evbuffer_add_printf(
	    out,
	    "# HELP beckon_dns_tcp_connections DNS TCP connections open.\n"
	    "# TYPE beckon_dns_tcp_connections gauge\nbeckon_dns_tcp_connections %u\n"
	    "# HELP beckon_dns_tcp_closed_total DNS TCP connections closed by the limits: "
	    "evicted (idle, to make room), refused (no room).\n"
	    "# TYPE beckon_dns_tcp_closed_total counter\n"
	    "beckon_dns_tcp_closed_total{reason=\"evicted\"} %llu\n"
	    "beckon_dns_tcp_closed_total{reason=\"refused\"} %llu\n",
	    st->tcp_conns, (unsigned long long)st->tcp_evicted,
	    (unsigned long long)st->tcp_refused);
}

static void metrics_dns(struct metrics *m, struct evbuffer *out)
{
	struct resolver_stats st;
	int i;

	resolver_stats(m->resolver, &st);
	evbuffer_add_printf(out, "# HELP beckon_dns_queries_total DNS answers sent, by rcode.\n"
	                         "# TYPE beckon_dns_queries_total counter\n");
	for (i = 0; i < 16; i++)
		if (st.rcode[i] || i <= 5)
			evbuffer_add_printf(out, "beckon_dns_queries_total{rcode=\"%s\"} %llu\n",
			                    metrics_rcode_names[i],
			                    (unsigned long long)st.rcode[i]);
	evbuffer_add_printf(out,
	                    "# HELP beckon_dns_dropped_total Packets too broken to answer.\n"
	                    "# TYPE beckon_dns_dropped_total counter\n"
	                    "beckon_dns_dropped_total %llu\n",
	                    (unsigned long long)st.dropped);
	metrics_dns_limits(&st, out);
}

static void metrics_boots_one(struct instance *inst, void *arg)
{
	struct instance_info in;

	launcher_info(inst, &in);
	evbuffer_add_printf(arg, "beckon_boots_total{service=\"%s\",result=\"ok\"} %u\n", in.name,
	                    in.boots_ok);
	evbuffer_add_printf(arg, "beckon_boots_total{service=\"%s\",result=\"failed\"} %u\n",
	                    in.name, in.boots_failed);
}

/* One series of histogram NAME, labelled how="HOW", or without a label when HOW is NULL. */
static void metrics_hist_series(struct evbuffer *out, const char *name, const char *how,
                                const struct launcher_hist *h)
{
	char lab[48] = "", lab1[48] = "";
	uint64_t cum = 0;
	int i;

	if (how != NULL) {
		snprintf(lab, sizeof(lab), "how=\"%s\",", how);
		snprintf(lab1, sizeof(lab1), "{how=\"%s\"}", how);
	}
	for (i = 0; i < LAUNCHER_HIST_BUCKETS; i++) {
		cum += h->counts[i];
		evbuffer_add_printf(out, "%s_bucket{%sle=\"%g\"} %llu\n", name, lab,
		                    launcher_hist_bounds[i], (unsigned long long)cum);
	}
	cum += h->counts[LAUNCHER_HIST_BUCKETS];
	evbuffer_add_printf(out, "%s_bucket{%sle=\"+Inf\"} %llu\n%s_sum%s %.6f\n%s_count%s %llu\n",
	                    name, lab, (unsigned long long)cum, name, lab1, h->sum, name, lab1,
	                    (unsigned long long)cum);
}

/*
 * Histogram NAME: the series without a label, every run as before the
 * label came (the contract's spelling), then one for each way a run began
 * in HOWS (ending in NONE).
 */
static void metrics_histogram(struct evbuffer *out, const char *name, const char *help,
                              const struct launcher_stats *st, const enum launcher_how *hows)
{
	struct launcher_hist all = {0};

	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (const enum launcher_how *h = hows; *h != LAUNCHER_HOW_NONE; h++) {
		for (int i = 0; i <= LAUNCHER_HIST_BUCKETS; i++)
			all.counts[i] += st->hist[*h].counts[i];
		all.sum += st->hist[*h].sum;
	}
	metrics_hist_series(out, name, NULL, &all);
	for (; *hows != LAUNCHER_HOW_NONE; hows++)
		metrics_hist_series(out, name, launcher_how_name(*hows), &st->hist[*hows]);
}

/* The wake queue (wake_queue): its length now, and what became of the wakes in it. */
static void metrics_wake_queue(const struct launcher_stats *st, struct evbuffer *out)
{
	evbuffer_add_printf(
	    out,
	    "# HELP beckon_wake_queue Wakes waiting for room (max_instances, max_memory).\n"
	    "# TYPE beckon_wake_queue gauge\nbeckon_wake_queue %zu\n"
	    "# HELP beckon_wake_queue_total Wakes that found no room: queued, admitted once "
	    "room was found, timed out (hold_timeout), refused (the queue was full).\n"
	    "# TYPE beckon_wake_queue_total counter\n"
	    "beckon_wake_queue_total{event=\"queued\"} %llu\n"
	    "beckon_wake_queue_total{event=\"admitted\"} %llu\n"
	    "beckon_wake_queue_total{event=\"timed_out\"} %llu\n"
	    "beckon_wake_queue_total{event=\"refused\"} %llu\n",
	    st->wake_queue, (unsigned long long)st->wake_queued,
	    (unsigned long long)st->wake_admitted, (unsigned long long)st->wake_timed_out,
	    (unsigned long long)st->wake_refused);
}

/* Boot slots (max_booting): boots under way, the most at once, the line behind them. */
static void metrics_boot_slots(const struct launcher_stats *st, struct evbuffer *out)
{
	evbuffer_add_printf(
	    out,
	    "# HELP beckon_boot_slots Boots and restores that may run at once (max_booting; 0: "
	    "no limit).\n# TYPE beckon_boot_slots gauge\nbeckon_boot_slots %u\n"
	    "# HELP beckon_boots_running Boots and restores started and not yet ended.\n"
	    "# TYPE beckon_boots_running gauge\nbeckon_boots_running %u\n"
	    "# HELP beckon_boots_running_peak The most boots and restores running at once "
	    "since beckond started.\n"
	    "# TYPE beckon_boots_running_peak gauge\nbeckon_boots_running_peak %u\n"
	    "# HELP beckon_boot_queue Boots waiting for a slot (state booting, not started).\n"
	    "# TYPE beckon_boot_queue gauge\nbeckon_boot_queue %zu\n"
	    "# HELP beckon_boot_queue_total Boots that waited for a slot.\n"
	    "# TYPE beckon_boot_queue_total counter\nbeckon_boot_queue_total %llu\n",
	    st->boot_slots, st->booting_started, st->booting_peak, st->boot_queue,
	    (unsigned long long)st->boot_queued);
}

static void metrics_launcher(struct metrics *m, struct evbuffer *out)
{
	static const enum launcher_how boots[] = {LAUNCHER_HOW_BOOT, LAUNCHER_HOW_TEMPLATE,
	                                          LAUNCHER_HOW_POOL, LAUNCHER_HOW_SHELL,
	                                          LAUNCHER_HOW_NONE};
	static const enum launcher_how wakes[] = {LAUNCHER_HOW_RESUME, LAUNCHER_HOW_RESTORE,
	                                          LAUNCHER_HOW_NONE};
	struct launcher_stats st;
	int i;

	launcher_stats(m->launcher, &st);
	evbuffer_add_printf(out, "# HELP beckon_boots_total Boots by service and result.\n"
	                         "# TYPE beckon_boots_total counter\n");
	launcher_foreach(m->launcher, metrics_boots_one, out);
	metrics_histogram(out, "beckon_boot_seconds",
	                  "Boot trigger to ready, seconds: all, and by how: a boot, a restore "
	                  "of the template (into a new VMM, into a pool VMM), a warm shell.",
	                  &st, boots);
	metrics_histogram(out, "beckon_wake_seconds",
	                  "Paused or suspended to ready, seconds: all, and by how: resume, "
	                  "restore.",
	                  &st, wakes);
	evbuffer_add_printf(out, "# HELP beckon_instances Instances by state.\n"
	                         "# TYPE beckon_instances gauge\n");
	for (i = 0; i < INST_NSTATES; i++)
		evbuffer_add_printf(out, "beckon_instances{state=\"%s\"} %u\n",
		                    launcher_state_name(i), st.instances[i]);
	evbuffer_add_printf(out,
	                    "# HELP beckon_held_connections Connections held while a guest "
	                    "boots.\n# TYPE beckon_held_connections gauge\n"
	                    "beckon_held_connections %u\n",
	                    st.held_connections);
	evbuffer_add_printf(out, "# HELP beckon_boots_refused_total Boots refused, by reason "
	                         "(boot rate limits, capacity).\n"
	                         "# TYPE beckon_boots_refused_total counter\n");
	for (i = 0; i < LAUNCHER_REFUSED_N; i++)
		evbuffer_add_printf(out, "beckon_boots_refused_total{reason=\"%s\"} %llu\n",
		                    launcher_refusal_name(i), (unsigned long long)st.refused[i]);
	metrics_wake_queue(&st, out);
	metrics_boot_slots(&st, out);
	evbuffer_add_printf(out,
	                    "# HELP beckon_pool_vmms VMMs of the pool (pool.size): idle, waiting "
	                    "for a cold start; starting.\n# TYPE beckon_pool_vmms gauge\n"
	                    "beckon_pool_vmms{state=\"idle\"} %u\n"
	                    "beckon_pool_vmms{state=\"starting\"} %u\n",
	                    st.pool_idle, st.pool_starting);
}

static void metrics_on_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	struct evbuffer *out;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	out = evbuffer_new();
	if (!out) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	metrics_dns(m, out);
	metrics_launcher(m, out);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void metrics_on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, 404, "Not Found");
}

struct metrics *metrics_new(struct event_base *base, const struct conf_addr *addr,
                            struct launcher *l, struct resolver *r)
{
	struct metrics *m = calloc(1, sizeof(*m));
	evutil_socket_t fd = -1;

	if (!m)
		return NULL;
	m->launcher = l;
	m->resolver = r;
	m->http = evhttp_new(base);
	if (!m->http)
		goto fail;
	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || evutil_make_listen_socket_reuseable(fd) < 0 ||
	    bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 || listen(fd, 64) < 0) {
		log_warn("metrics_listen %s", addr->text);
		goto fail;
	}
	if (!evhttp_accept_socket_with_handle(m->http, fd))
		goto fail;
	fd = -1;
	evhttp_set_cb(m->http, "/metrics", metrics_on_request, m);
	evhttp_set_gencb(m->http, metrics_on_other, m);
	evhttp_set_timeout(m->http, 10);
	return m;
fail:
	if (fd >= 0)
		close(fd);
	if (m->http)
		evhttp_free(m->http);
	free(m);
	return NULL;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	evhttp_free(m->http);
	free(m);
}
