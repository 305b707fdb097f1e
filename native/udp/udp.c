// A batched UDP socket for Node: recvmmsg fills up to `batch` datagrams per wake of the libuv loop and JS is
// called once per batch; sends are queued by JS in a shared area and leave with one sendmmsg per flush. When
// the kernel's send buffer is full, the rest wait in a bounded queue until the socket is writable again;
// whatever does not fit is dropped and counted. Node's dgram costs one syscall, one callback and one buffer
// per datagram, which is most of the cost of a tunnel cell.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Room for the largest UDP payload. Pages of a slot the kernel never writes are never touched, so a batch
// of small datagrams costs a page per slot, not the whole slot.
#define SLOT_BYTES 65536
// Per datagram in the metadata arrays shared with JS: offset, length, family, port, address words 0-3.
#define META_INTS 8
// Receive messages per recvmmsg at most, and datagrams per flush.
#define MAX_BATCH 256
// Batches read per readable wake before other handles of the loop get their turn.
#define MAX_ROUNDS 4
// UDP segmentation offload: a run of same-size datagrams to one address leaves as one message (UDP_SEGMENT)
// and a receiving socket with UDP_GRO gets such runs whole; either way the stack is crossed once per run.
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 65000
// Segments one received message may carry (the kernel's UDP_MAX_SEGMENTS is at most 128).
#define GRO_MAX_SEGMENTS 128
#define CTL_BYTES 64
#define PENDING_MAX_PACKETS 4096
#define PENDING_MAX_BYTES (8 * 1024 * 1024)

// Families in the metadata: 5 is an IPv4 peer seen on a dual-stack IPv6 socket (::ffff:a.b.c.d).
#define FAMILY_V4 4
#define FAMILY_V6 6
#define FAMILY_MAPPED 5

// Counters shared with JS (a Float64Array).
enum {
  C_SEND_ERRORS,
  C_SEND_DROPPED,
  C_SEND_QUEUED,
  C_SEND_BLOCKED,
  C_RECV_BATCHES,
  C_RECV_PACKETS,
  C_RECV_ERRORS,
  C_RECV_TRUNCATED,
  C_PENDING,
  C_SENDMMSG_CALLS,
  C_SEND_COALESCED,
  C_RECV_COALESCED,
  C_COUNT
};

typedef struct {
  uint8_t *data;
  uint32_t len;
  socklen_t addrlen;
  struct sockaddr_storage addr;
} pending_t;

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int family;
  int batch;
  int events;
  int closing;
  int handle_closed;
  int finalized;
  int teardown;
  // fault injection for tests: this many sendmmsg calls act as if the kernel's send buffer were full
  int refuse_sends;
  int gso;
  // runs of datagrams this large or larger were refused as one message (above the path MTU): sent one by one
  size_t gso_refused_size;
  napi_ref on_batch;
  napi_ref on_close;
  napi_ref arrays[4];
  napi_async_context async;
  // registered while the socket is open: a worker's or the process's teardown waits for the handle to close
  napi_async_cleanup_hook_handle cleanup;
  int poll_error_seen;
  int32_t *recv_meta;
  uint8_t *send_area;
  size_t send_area_len;
  int32_t *send_meta;
  double *counters;
  uint8_t *slab;
  struct mmsghdr *rmsgs;
  struct iovec *riov;
  struct sockaddr_storage *raddr;
  struct mmsghdr *smsgs;
  struct iovec *siov;
  struct sockaddr_storage *saddr;
  struct mmsghdr *gmsgs;
  struct iovec *giov;
  uint8_t *gctl;
  uint8_t *rctl;
  int *gsegs;
  pending_t *pending;
  uint32_t pend_head;
  uint32_t pend_len;
  size_t pend_bytes;
} sock_t;

static void on_poll(uv_poll_t *handle, int status, int events);

static void throw_errno(napi_env env, int err, const char *what) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  const char *code = "EIO";
  switch (err) {
  case EADDRINUSE: code = "EADDRINUSE"; break;
  case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
  case EACCES: code = "EACCES"; break;
  case EAFNOSUPPORT: code = "EAFNOSUPPORT"; break;
  case EINVAL: code = "EINVAL"; break;
  case EMFILE: code = "EMFILE"; break;
  case ENFILE: code = "ENFILE"; break;
  case ENOMEM: code = "ENOMEM"; break;
  case EPERM: code = "EPERM"; break;
  }
  napi_throw_error(env, code, message);
}

static int is_retry(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS; }

static int send_batch(sock_t *s, struct mmsghdr *msgs, unsigned n) {
  s->counters[C_SENDMMSG_CALLS] += 1;
  if (s->refuse_sends > 0) {
    s->refuse_sends -= 1;
    errno = EAGAIN;
    return -1;
  }
  return sendmmsg(s->fd, msgs, n, 0);
}

static void free_buffers(sock_t *s) {
  free(s->slab);
  free(s->rmsgs);
  free(s->riov);
  free(s->raddr);
  free(s->smsgs);
  free(s->siov);
  free(s->saddr);
  free(s->gmsgs);
  free(s->giov);
  free(s->gctl);
  free(s->rctl);
  free(s->gsegs);
  if (s->pending != NULL) {
    for (uint32_t i = 0; i < s->pend_len; i++) free(s->pending[(s->pend_head + i) % PENDING_MAX_PACKETS].data);
    free(s->pending);
  }
  s->slab = NULL;
  s->rmsgs = NULL;
  s->riov = NULL;
  s->raddr = NULL;
  s->smsgs = NULL;
  s->siov = NULL;
  s->saddr = NULL;
  s->gmsgs = NULL;
  s->giov = NULL;
  s->gctl = NULL;
  s->rctl = NULL;
  s->gsegs = NULL;
  s->pending = NULL;
  s->pend_len = 0;
}

static void set_events(sock_t *s, int events) {
  if (s->closing || events == s->events) return;
  s->events = events;
  uv_poll_start(&s->poll, events, on_poll);
}

// Writes the address a datagram is sent to from metadata words; 0 when the family does not fit the socket.
static socklen_t fill_addr(sock_t *s, const int32_t *meta, struct sockaddr_storage *out) {
  int family = meta[2];
  uint16_t port = (uint16_t)meta[3];
  memset(out, 0, sizeof *out);
  if (s->family == AF_INET) {
    if (family != FAMILY_V4) return 0;
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl((uint32_t)meta[4]);
    return sizeof *sin;
  }
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  uint32_t words[4];
  if (family == FAMILY_V4) {
    words[0] = 0;
    words[1] = 0;
    words[2] = htonl(0xffff);
    words[3] = htonl((uint32_t)meta[4]);
  } else if (family == FAMILY_V6) {
    for (int i = 0; i < 4; i++) words[i] = htonl((uint32_t)meta[4 + i]);
  } else {
    return 0;
  }
  memcpy(&sin6->sin6_addr, words, 16);
  return sizeof *sin6;
}

static void read_addr(const struct sockaddr_storage *addr, int32_t *meta) {
  if (addr->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    meta[2] = FAMILY_V4;
    meta[3] = ntohs(sin->sin_port);
    meta[4] = (int32_t)ntohl(sin->sin_addr.s_addr);
    meta[5] = meta[6] = meta[7] = 0;
    return;
  }
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
  uint32_t words[4];
  memcpy(words, &sin6->sin6_addr, 16);
  meta[3] = ntohs(sin6->sin6_port);
  if (words[0] == 0 && words[1] == 0 && words[2] == htonl(0xffff)) {
    meta[2] = FAMILY_MAPPED;
    meta[4] = (int32_t)ntohl(words[3]);
    meta[5] = meta[6] = meta[7] = 0;
    return;
  }
  meta[2] = FAMILY_V6;
  for (int i = 0; i < 4; i++) meta[4 + i] = (int32_t)ntohl(words[i]);
}

static void pend(sock_t *s, const uint8_t *data, uint32_t len, const struct sockaddr_storage *addr, socklen_t addrlen) {
  if (s->pend_len >= PENDING_MAX_PACKETS || s->pend_bytes + len > PENDING_MAX_BYTES) {
    s->counters[C_SEND_DROPPED] += 1;
    return;
  }
  uint8_t *copy = malloc(len > 0 ? len : 1);
  if (copy == NULL) {
    s->counters[C_SEND_DROPPED] += 1;
    return;
  }
  memcpy(copy, data, len);
  pending_t *p = &s->pending[(s->pend_head + s->pend_len) % PENDING_MAX_PACKETS];
  p->data = copy;
  p->len = len;
  p->addr = *addr;
  p->addrlen = addrlen;
  s->pend_len += 1;
  s->pend_bytes += len;
  s->counters[C_SEND_QUEUED] += 1;
  s->counters[C_PENDING] = s->pend_len;
}

// Sends `n` datagrams (one message each in `flat`) in as few messages as possible: consecutive ones to the same
// address whose bytes follow each other and that have the same size (the last of a run may be shorter) become
// one UDP_SEGMENT message. Returns how many datagrams left or failed for good (counted); it stops early only
// when the kernel pushes back.
static int transmit(sock_t *s, struct mmsghdr *flat, int n) {
  int done = 0;
  int plain_until = 0; // datagrams before this index go one per message (their run was refused as one)
  while (done < n) {
    int g = 0;
    int i = done;
    while (i < n && g < MAX_BATCH) {
      struct msghdr *h = &flat[i].msg_hdr;
      size_t seg = h->msg_iov->iov_len;
      size_t total = seg;
      int k = 1;
      if (s->gso && i >= plain_until && seg > 0 && seg < s->gso_refused_size) {
        while (i + k < n && k < GSO_MAX_SEGMENTS) {
          struct msghdr *x = &flat[i + k].msg_hdr;
          size_t len = x->msg_iov->iov_len;
          if (len == 0 || len > seg || total + len > GSO_MAX_BYTES) break;
          if ((uint8_t *)x->msg_iov->iov_base != (uint8_t *)h->msg_iov->iov_base + total) break;
          if (x->msg_namelen != h->msg_namelen || memcmp(x->msg_name, h->msg_name, h->msg_namelen) != 0) break;
          total += len;
          k += 1;
          if (len < seg) break;
        }
      }
      struct msghdr *o = &s->gmsgs[g].msg_hdr;
      s->giov[g].iov_base = h->msg_iov->iov_base;
      s->giov[g].iov_len = total;
      o->msg_name = h->msg_name;
      o->msg_namelen = h->msg_namelen;
      o->msg_iov = &s->giov[g];
      o->msg_iovlen = 1;
      o->msg_flags = 0;
      if (k > 1) {
        uint8_t *ctl = s->gctl + (size_t)g * CTL_BYTES;
        memset(ctl, 0, CTL_BYTES);
        o->msg_control = ctl;
        o->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        struct cmsghdr *cm = CMSG_FIRSTHDR(o);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t size = (uint16_t)seg;
        memcpy(CMSG_DATA(cm), &size, sizeof size);
      } else {
        o->msg_control = NULL;
        o->msg_controllen = 0;
      }
      s->gsegs[g] = k;
      g += 1;
      i += k;
    }
    int r = send_batch(s, s->gmsgs, (unsigned)g);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (is_retry(errno)) return done;
      if (s->gsegs[0] > 1) {
        // the run as one message was refused (a segment above the path MTU, no checksum offload): send its
        // datagrams one by one, and stop segmenting on this socket if the device cannot do it at all
        if (errno == EIO || errno == EOPNOTSUPP || errno == ENOPROTOOPT) s->gso = 0;
        size_t seg = flat[done].msg_hdr.msg_iov->iov_len;
        if (errno == EINVAL && seg < s->gso_refused_size) s->gso_refused_size = seg;
        plain_until = done + s->gsegs[0];
        continue;
      }
      s->counters[C_SEND_ERRORS] += 1; // failed for good (unreachable, too large, ...): skip it
      done += 1;
      continue;
    }
    for (int j = 0; j < r; j++) {
      done += s->gsegs[j];
      if (s->gsegs[j] > 1) s->counters[C_SEND_COALESCED] += s->gsegs[j];
    }
  }
  return done;
}

// Sends queued datagrams until the queue is empty or the kernel pushes back; true when the queue is empty.
static int drain(sock_t *s) {
  while (s->pend_len > 0) {
    int n = (int)(s->pend_len < MAX_BATCH ? s->pend_len : MAX_BATCH);
    for (int i = 0; i < n; i++) {
      pending_t *p = &s->pending[(s->pend_head + i) % PENDING_MAX_PACKETS];
      s->siov[i].iov_base = p->data;
      s->siov[i].iov_len = p->len;
      s->smsgs[i].msg_hdr.msg_name = &p->addr;
      s->smsgs[i].msg_hdr.msg_namelen = p->addrlen;
      s->smsgs[i].msg_hdr.msg_iov = &s->siov[i];
      s->smsgs[i].msg_hdr.msg_iovlen = 1;
      s->smsgs[i].msg_hdr.msg_control = NULL;
      s->smsgs[i].msg_hdr.msg_controllen = 0;
      s->smsgs[i].msg_hdr.msg_flags = 0;
    }
    int r = transmit(s, s->smsgs, n);
    for (int i = 0; i < r; i++) {
      pending_t *p = &s->pending[s->pend_head];
      s->pend_bytes -= p->len;
      free(p->data);
      p->data = NULL;
      s->pend_head = (s->pend_head + 1) % PENDING_MAX_PACKETS;
      s->pend_len -= 1;
    }
    if (r < n) break;
  }
  s->counters[C_PENDING] = s->pend_len;
  return s->pend_len == 0;
}

static void receive(sock_t *s) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  for (int round = 0; round < MAX_ROUNDS && !s->closing; round++) {
    for (int i = 0; i < s->batch; i++) {
      s->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
      s->rmsgs[i].msg_hdr.msg_flags = 0;
      s->rmsgs[i].msg_hdr.msg_control = s->rctl + (size_t)i * CTL_BYTES;
      s->rmsgs[i].msg_hdr.msg_controllen = CTL_BYTES;
      s->rmsgs[i].msg_len = 0;
    }
    int n = recvmmsg(s->fd, s->rmsgs, (unsigned)s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) s->counters[C_RECV_ERRORS] += 1;
      break;
    }
    if (n == 0) break;
    size_t total = 0;
    int kept = 0;
    for (int i = 0; i < n; i++) {
      struct msghdr *h = &s->rmsgs[i].msg_hdr;
      int segment = 0;
      if (!(h->msg_flags & MSG_TRUNC)) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm))
          if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) memcpy(&segment, CMSG_DATA(cm), sizeof segment);
      }
      uint32_t len = s->rmsgs[i].msg_len;
      int segments = segment > 0 && len > (uint32_t)segment ? (int)((len + segment - 1) / segment) : 1;
      if ((h->msg_flags & MSG_TRUNC) || segments > GRO_MAX_SEGMENTS) {
        s->counters[C_RECV_TRUNCATED] += 1;
        s->gsegs[i] = -1;
        continue;
      }
      s->gsegs[i] = segments > 1 ? segment : 0; // the segment size of a coalesced run, else 0
      if (segments > 1) s->counters[C_RECV_COALESCED] += segments;
      total += len;
      kept += segments;
    }
    s->counters[C_RECV_BATCHES] += 1;
    s->counters[C_RECV_PACKETS] += kept;
    if (kept > 0) {
      void *data = NULL;
      napi_value buffer;
      // an empty datagram gets an empty buffer (a batch of them, a buffer of no bytes)
      if (napi_create_buffer(env, total, &data, &buffer) != napi_ok) {
        s->counters[C_RECV_ERRORS] += 1;
        break;
      }
      size_t offset = 0;
      int k = 0;
      for (int i = 0; i < n; i++) {
        if (s->gsegs[i] < 0) continue; // truncated or refused above
        uint32_t len = s->rmsgs[i].msg_len;
        uint32_t segment = s->gsegs[i] > 0 ? (uint32_t)s->gsegs[i] : len;
        if (len > 0) memcpy((uint8_t *)data + offset, s->slab + (size_t)i * SLOT_BYTES, len);
        int32_t *first = s->recv_meta + (size_t)k * META_INTS;
        read_addr(&s->raddr[i], first);
        uint32_t at = 0;
        do {
          int32_t *meta = s->recv_meta + (size_t)k * META_INTS;
          if (meta != first) memcpy(meta + 2, first + 2, (META_INTS - 2) * sizeof *meta);
          uint32_t part = len - at < segment ? len - at : segment;
          meta[0] = (int32_t)(offset + at);
          meta[1] = (int32_t)part;
          at += part;
          k += 1;
        } while (at < len);
        offset += len;
      }
      napi_value argv[2], cb, global, result;
      argv[0] = buffer;
      napi_create_int32(env, kept, &argv[1]);
      napi_get_reference_value(env, s->on_batch, &cb);
      napi_get_global(env, &global);
      if (napi_make_callback(env, s->async, global, cb, 2, argv, &result) == napi_pending_exception) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
    }
    if (n < s->batch) break;
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  sock_t *s = handle->data;
  if (s->closing) return;
  if (status < 0) {
    // libuv stops the handle on POLLERR. A pending socket error (an ICMP error, say) is taken, which clears it,
    // counted, and polling goes on, so one such error never ends the socket's reads; anything else is said once
    int err = 0;
    socklen_t len = sizeof err;
    int cleared = getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0;
    s->counters[C_RECV_ERRORS] += 1;
    if (cleared) {
      uv_poll_start(&s->poll, s->events, on_poll);
    } else if (!s->poll_error_seen) {
      s->poll_error_seen = 1;
      fprintf(stderr, "udp: polling the socket failed (%s); it no longer reads\n", uv_strerror(status));
    }
    return;
  }
  if ((events & UV_WRITABLE) && drain(s)) set_events(s, UV_READABLE);
  if (events & UV_READABLE) receive(s);
}

static void maybe_free(sock_t *s) {
  if (s->handle_closed && s->finalized) free(s);
}

static void on_closed(uv_handle_t *handle) {
  sock_t *s = handle->data;
  close(s->fd);
  s->fd = -1;
  free_buffers(s);
  s->handle_closed = 1;
  napi_env env = s->env;
  napi_async_cleanup_hook_handle cleanup = s->cleanup;
  s->cleanup = NULL;
  if (!s->teardown) {
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value cb = NULL, global, result;
    if (s->on_close != NULL) napi_get_reference_value(env, s->on_close, &cb);
    napi_get_global(env, &global);
    for (int i = 0; i < 4; i++) napi_delete_reference(env, s->arrays[i]);
    napi_delete_reference(env, s->on_batch);
    if (s->on_close != NULL) napi_delete_reference(env, s->on_close);
    if (cb != NULL && napi_make_callback(env, s->async, global, cb, 0, NULL, &result) == napi_pending_exception) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    napi_async_destroy(env, s->async);
    napi_close_handle_scope(env, scope);
  }
  // last: during teardown this lets the environment (and the addon's code) go, so nothing may run after it
  // but freeing memory
  maybe_free(s);
  if (cleanup != NULL) napi_remove_async_cleanup_hook(cleanup);
}

static void begin_close(sock_t *s) {
  if (s->closing) return;
  drain(s); // one last try for queued datagrams; what the kernel refuses now is dropped
  s->counters[C_SEND_DROPPED] += s->pend_len;
  s->counters[C_PENDING] = 0;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

// The environment is going away (a worker ends, the process exits): the handle must close while the addon is
// still loaded. The environment waits until on_closed removes the hook.
static void cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  sock_t *s = arg;
  s->teardown = 1;
  begin_close(s);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = data;
  s->finalized = 1;
  maybe_free(s);
}

static int typed(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *bytes) {
  napi_typedarray_type type;
  size_t length, offset;
  napi_value arraybuffer;
  if (napi_get_typedarray_info(env, value, &type, &length, data, &arraybuffer, &offset) != napi_ok ||
      type != want)
    return 0;
  size_t unit = want == napi_float64_array ? 8 : want == napi_int32_array ? 4 : 1;
  *bytes = length * unit;
  return 1;
}

static sock_t *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

// open(host, port, rcvbufBytes, sndbufBytes, broadcast, batch, onBatch, recvMeta, sendArea, sendMeta, counters)
//   -> [handle, boundHost, boundPort, rcvbufBytes, sndbufBytes]
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 11) {
    napi_throw_type_error(env, "EINVAL", "open needs 11 arguments");
    return NULL;
  }
  char host[64];
  size_t host_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "the bind host must be a string");
    return NULL;
  }
  int32_t port = 0, rcvbuf = 0, sndbuf = 0, batch = 0;
  bool broadcast = false;
  napi_get_value_int32(env, argv[1], &port);
  napi_get_value_int32(env, argv[2], &rcvbuf);
  napi_get_value_int32(env, argv[3], &sndbuf);
  napi_get_value_bool(env, argv[4], &broadcast);
  napi_get_value_int32(env, argv[5], &batch);
  if (port < 0 || port > 65535) {
    napi_throw_range_error(env, "EINVAL", "the bind port must be 0-65535");
    return NULL;
  }
  if (batch < 1 || batch > MAX_BATCH) {
    napi_throw_range_error(env, "EINVAL", "the batch size must be 1-256");
    return NULL;
  }
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t addrlen;
  int family;
  struct sockaddr_in *sin = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    family = AF_INET;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    addrlen = sizeof *sin;
  } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    family = AF_INET6;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    addrlen = sizeof *sin6;
  } else {
    char message[128];
    snprintf(message, sizeof message, "not an IP address to bind to: '%s'", host);
    napi_throw_error(env, "EINVAL", message);
    return NULL;
  }

  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    throw_errno(env, ENOMEM, "udp socket");
    return NULL;
  }
  s->env = env;
  s->family = family;
  s->batch = batch;
  s->fd = -1;
  // the arrays are only checked here; references to them are taken once the socket is bound, so a failed open
  // leaves nothing behind
  void *ptr;
  size_t bytes;
  if (!typed(env, argv[7], napi_int32_array, &ptr, &bytes) ||
      bytes < (size_t)batch * GRO_MAX_SEGMENTS * META_INTS * 4) {
    free(s);
    napi_throw_type_error(env, "EINVAL", "recvMeta must be an Int32Array of batch * 128 * 8");
    return NULL;
  }
  s->recv_meta = ptr;
  if (!typed(env, argv[8], napi_uint8_array, &ptr, &s->send_area_len)) {
    free(s);
    napi_throw_type_error(env, "EINVAL", "sendArea must be a Uint8Array");
    return NULL;
  }
  s->send_area = ptr;
  if (!typed(env, argv[9], napi_int32_array, &ptr, &bytes) || bytes < MAX_BATCH * META_INTS * 4) {
    free(s);
    napi_throw_type_error(env, "EINVAL", "sendMeta must be an Int32Array of 256 * 8");
    return NULL;
  }
  s->send_meta = ptr;
  if (!typed(env, argv[10], napi_float64_array, &ptr, &bytes) || bytes < C_COUNT * 8) {
    free(s);
    napi_throw_type_error(env, "EINVAL", "counters must be a Float64Array of 16");
    return NULL;
  }
  s->counters = ptr;

  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    free(s);
    throw_errno(env, err, "socket");
    return NULL;
  }
  int zero = 0, one = 1;
  // dual-stack like Node's udp6 sockets: IPv4 peers arrive as ::ffff:a.b.c.d
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (broadcast) setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  // runs of datagrams arrive whole when the sender segments (older kernels refuse: then one by one)
  setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&addr, addrlen) != 0) {
    int err = errno;
    close(fd);
    free(s);
    char what[128];
    snprintf(what, sizeof what, "bind %s:%d", host, port);
    throw_errno(env, err, what);
    return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t boundlen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &boundlen);
  char bound_host[INET6_ADDRSTRLEN] = "";
  int bound_port;
  if (bound.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr, bound_host, sizeof bound_host);
    bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  } else {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr, bound_host, sizeof bound_host);
    bound_port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  }
  int actual_rcv = 0, actual_snd = 0;
  socklen_t optlen = sizeof actual_rcv;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual_rcv, &optlen);
  optlen = sizeof actual_snd;
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &actual_snd, &optlen);

  s->fd = fd;
  s->slab = malloc((size_t)batch * SLOT_BYTES);
  s->rmsgs = calloc((size_t)batch, sizeof *s->rmsgs);
  s->riov = calloc((size_t)batch, sizeof *s->riov);
  s->raddr = calloc((size_t)batch, sizeof *s->raddr);
  s->smsgs = calloc(MAX_BATCH, sizeof *s->smsgs);
  s->siov = calloc(MAX_BATCH, sizeof *s->siov);
  s->saddr = calloc(MAX_BATCH, sizeof *s->saddr);
  s->gmsgs = calloc(MAX_BATCH, sizeof *s->gmsgs);
  s->giov = calloc(MAX_BATCH, sizeof *s->giov);
  s->gctl = calloc(MAX_BATCH, CTL_BYTES);
  s->rctl = calloc((size_t)batch, CTL_BYTES);
  s->gsegs = calloc(MAX_BATCH, sizeof *s->gsegs);
  s->pending = calloc(PENDING_MAX_PACKETS, sizeof *s->pending);
  s->gso = 1;
  s->gso_refused_size = SIZE_MAX;
  if (s->slab == NULL || s->rmsgs == NULL || s->riov == NULL || s->raddr == NULL || s->smsgs == NULL ||
      s->siov == NULL || s->saddr == NULL || s->gmsgs == NULL || s->giov == NULL || s->gctl == NULL ||
      s->rctl == NULL || s->gsegs == NULL || s->pending == NULL) {
    close(fd);
    free_buffers(s);
    free(s);
    throw_errno(env, ENOMEM, "udp socket buffers");
    return NULL;
  }
  for (int i = 0; i < batch; i++) {
    s->riov[i].iov_base = s->slab + (size_t)i * SLOT_BYTES;
    s->riov[i].iov_len = SLOT_BYTES;
    s->rmsgs[i].msg_hdr.msg_name = &s->raddr[i];
    s->rmsgs[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsgs[i].msg_hdr.msg_iovlen = 1;
  }
  for (int i = 0; i < 4; i++) napi_create_reference(env, argv[7 + i], 1, &s->arrays[i]);
  napi_create_reference(env, argv[6], 1, &s->on_batch);
  napi_value resource_name;
  napi_create_string_utf8(env, "UDPBATCH", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  s->events = UV_READABLE;
  uv_poll_start(&s->poll, UV_READABLE, on_poll);
  napi_add_async_cleanup_hook(env, cleanup_hook, s, &s->cleanup);

  napi_value result, handle, value;
  napi_create_array_with_length(env, 5, &result);
  napi_create_external(env, s, finalize, NULL, &handle);
  napi_set_element(env, result, 0, handle);
  napi_create_string_utf8(env, bound_host, NAPI_AUTO_LENGTH, &value);
  napi_set_element(env, result, 1, value);
  napi_create_int32(env, bound_port, &value);
  napi_set_element(env, result, 2, value);
  napi_create_int32(env, actual_rcv, &value);
  napi_set_element(env, result, 3, value);
  napi_create_int32(env, actual_snd, &value);
  napi_set_element(env, result, 4, value);
  return result;
}

// flush(handle, count): sends the first `count` datagrams described in sendMeta (offsets into sendArea).
static napi_value js_flush(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = argc == 2 ? unwrap(env, argv[0]) : NULL;
  int32_t count = 0;
  if (s == NULL || napi_get_value_int32(env, argv[1], &count) != napi_ok || count < 0 || count > MAX_BATCH) {
    napi_throw_type_error(env, "EINVAL", "flush(handle, count) with 0 <= count <= 256");
    return NULL;
  }
  if (s->closing) {
    s->counters[C_SEND_ERRORS] += count;
    return NULL;
  }
  // datagrams already waiting go first (drain reuses the message arrays, so it runs before they are filled)
  int queued_first = s->pend_len > 0 && !drain(s);
  int n = 0;
  for (int i = 0; i < count; i++) {
    const int32_t *meta = s->send_meta + (size_t)i * META_INTS;
    size_t offset = (uint32_t)meta[0], len = (uint32_t)meta[1];
    socklen_t addrlen = fill_addr(s, meta, &s->saddr[n]);
    if (addrlen == 0 || offset + len > s->send_area_len) {
      s->counters[C_SEND_ERRORS] += 1;
      continue;
    }
    s->siov[n].iov_base = s->send_area + offset;
    s->siov[n].iov_len = len;
    struct msghdr *hdr = &s->smsgs[n].msg_hdr;
    hdr->msg_name = &s->saddr[n];
    hdr->msg_namelen = addrlen;
    hdr->msg_iov = &s->siov[n];
    hdr->msg_iovlen = 1;
    hdr->msg_control = NULL;
    hdr->msg_controllen = 0;
    hdr->msg_flags = 0;
    n += 1;
  }
  int sent = queued_first ? 0 : transmit(s, s->smsgs, n);
  if (sent < n) {
    // the kernel's buffer is full: keep the rest (bounded) until the socket is writable
    s->counters[C_SEND_BLOCKED] += 1;
    for (int i = sent; i < n; i++) {
      struct msghdr *hdr = &s->smsgs[i].msg_hdr;
      pend(s, hdr->msg_iov->iov_base, (uint32_t)hdr->msg_iov->iov_len, hdr->msg_name, hdr->msg_namelen);
    }
    set_events(s, UV_READABLE | UV_WRITABLE);
  }
  return NULL;
}

// close(handle, onClosed): stops reading, tries queued sends once more, closes the descriptor, calls onClosed.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = argc == 2 ? unwrap(env, argv[0]) : NULL;
  if (s == NULL) {
    napi_throw_type_error(env, "EINVAL", "close(handle, onClosed)");
    return NULL;
  }
  if (s->closing) return NULL;
  napi_create_reference(env, argv[1], 1, &s->on_close);
  begin_close(s); // the cleanup hook stays until on_closed: a teardown before then waits for the handle
  return NULL;
}

// refuseSends(handle, count): the next `count` sendmmsg calls fail with EAGAIN without reaching the kernel, so
// tests can drive the bounded queue on loopback, where the kernel never pushes back.
static napi_value js_refuse_sends(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = argc == 2 ? unwrap(env, argv[0]) : NULL;
  int32_t count = 0;
  if (s == NULL || napi_get_value_int32(env, argv[1], &count) != napi_ok || count < 0) {
    napi_throw_type_error(env, "EINVAL", "refuseSends(handle, count) with count >= 0");
    return NULL;
  }
  s->refuse_sends = count;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flush", NULL, js_flush, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"refuseSends", NULL, js_refuse_sends, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 4, props);
  napi_value value;
  napi_create_int32(env, MAX_BATCH, &value);
  napi_set_named_property(env, exports, "MAX_BATCH", value);
  napi_create_int32(env, C_COUNT, &value);
  napi_set_named_property(env, exports, "COUNTERS", value);
  napi_create_int32(env, GRO_MAX_SEGMENTS, &value);
  napi_set_named_property(env, exports, "MAX_SEGMENTS", value);
  return exports;
}
