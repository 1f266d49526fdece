/*
 * Host networking for bridge mode, through libnl-route: the bridge, one
 * persistent tap per instance, a MAC per service, permanent neighbour
 * entries, and the cleanup of what a killed beckond left. Every call is a
 * few synchronous netlink round trips on a socket of its own: well under a
 * millisecond, except deleting a link (tap or bridge), which the kernel makes
 * wait 15-45 ms for RCU; so keep a service's tap across its boots. None is
 * fatal: failures return -1 after a log line naming what failed.
 *
 * What beckon makes is marked so that a later run recognises it:
 * - a bridge beckon created carries the interface alias "beckon";
 * - taps are named "bk" + a hash of the service name in hex + the name:
 *   4 digits and the whole name up to 9 characters, else 8 digits and its
 *   first 5; they carry the alias "beckon:SERVICE" (launcher_check_names
 *   refuses two services that would share a tap or a MAC);
 * - MACs start with 02:62:6b ("bk", locally administered, unicast).
 */
#ifndef BECKON_HOSTNET_H
#define BECKON_HOSTNET_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct conf;
struct conf_service;

#define HOSTNET_MAC_STRLEN 18 /* "xx:xx:xx:xx:xx:xx" and NUL */

/*
 * Make BRIDGE exist, hold the first host address of SUBNET/PREFIX (10.77.0.1
 * for 10.77.0.0/24) and be up. A bridge created here is marked as beckon's.
 * 1 when it was created now, 0 when it existed, -1 on failure.
 */
int hostnet_bridge_ensure(const char *bridge, struct in_addr subnet, int prefix);

/*
 * Delete BRIDGE if beckon created it (by this run or an earlier one);
 * leave anything else alone. 1 when deleted, 0 when left, -1 on failure.
 */
int hostnet_bridge_remove(const char *bridge);

/* The tap name of SERVICE: deterministic, at most IFNAMSIZ-1 characters. */
void hostnet_tap_name(const char *service, char out[IFNAMSIZ]);

/* Whether NAME has the shape of a beckon tap name. */
int hostnet_is_tap_name(const char *name);

/*
 * Create the persistent tap NAME (IFF_TAP|IFF_NO_PI; QEMU opens it with
 * -netdev tap,ifname=NAME,script=no,downscript=no), mark it as SERVICE's,
 * enslave it to BRIDGE and set it up. A leftover tap of that name is reused.
 * 0 on success, -1 on failure (nothing left behind).
 */
int hostnet_tap_create(const char *name, const char *bridge, const char *service);

/* Delete the tap NAME. 0 when gone (also when it did not exist), -1 on failure. */
int hostnet_tap_destroy(const char *name);

/* The MAC of SERVICE's guest: 02:62:6b and three bytes of a name hash. */
void hostnet_mac(const char *service, uint8_t mac[6]);

/* MAC as "xx:xx:xx:xx:xx:xx". */
void hostnet_mac_format(const uint8_t mac[6], char out[HOSTNET_MAC_STRLEN]);

/*
 * A permanent neighbour entry IP -> MAC on BRIDGE, replacing any entry for
 * IP, so the first probe or SYN to the guest leaves without waiting for ARP.
 * 0 on success, -1 on failure.
 */
int hostnet_neigh_add(const char *bridge, struct in_addr ip, const uint8_t mac[6]);

/* Remove the entry for IP on BRIDGE. 0 when gone (also when absent), -1 on failure. */
int hostnet_neigh_del(const char *bridge, struct in_addr ip);

/*
 * Remove what an earlier run left: every beckon tap enslaved to BRIDGE or to
 * no bridge, and every permanent neighbour entry on BRIDGE with a beckon MAC.
 * The number of things removed, or -1 when the listing failed.
 */
int hostnet_cleanup_stale(const char *bridge);

/*
 * Traffic counters of the link TAP, from the host's side: rx is what the
 * guest sent, tx what was sent to the guest. 0 on success, -1 on failure.
 * Any pointer may be NULL.
 */
int hostnet_tap_counters(const char *tap, uint64_t *rx_bytes, uint64_t *tx_bytes,
                         uint64_t *rx_packets, uint64_t *tx_packets);

/* ---- bridge mode for a whole config (hostnet_svc.c) ---- */

/*
 * At start and every reload: in bridge mode, when a service USES the
 * bridge, make it (sweeping once what an earlier run left on it); take
 * down the taps and neighbour entries of services gone, moved or no longer
 * using it; with none left using it, remove the bridge beckon made.
 * 0 on success, -1 when the bridge cannot be set up (logged).
 */
int hostnet_sync(const struct conf *conf, bool (*uses)(const struct conf_service *));
/* At exit: every tap and neighbour entry made, and the bridge. */
void hostnet_fini(void);
/* The gateway (the bridge's address) and prefix guests are given. */
const char *hostnet_gateway(void);
int hostnet_prefix(void);
/*
 * SERVICE's guest at ADDR gets its tap TAP (on the bridge, up; kept across
 * boots) and a permanent neighbour entry for its MAC. TAP "": no tap (the
 * hypervisor makes the guest's interface: Xen's vif). -1 when not (logged).
 */
int hostnet_guest_up(const char *service, const char *tap, struct in_addr addr);
/* SERVICE's guest is gone for good (a pattern instance forgotten): its tap and entry go. */
void hostnet_guest_down(const char *service);

#endif
