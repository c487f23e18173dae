/*
 * gaterun-httpd's dashboard: the page of src/dashboard.html, compiled in
 * (src/dashboard.inc is made from it), served with headers that keep it
 * from being framed, leaking its address or loading anything from away.
 */
#include "config.h"

#include <stdint.h>

#include <microhttpd.h>

#include "httpd.h"

static const char dashboard[] =
#include "dashboard.inc"
;

/* GET /: the page, locked down by its headers. */
enum MHD_Result
send_page(struct MHD_Connection *c)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(sizeof(dashboard) - 1,
	    (void *)(uintptr_t)dashboard, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, "X-Frame-Options", "DENY");
	(void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	(void)MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; script-src 'unsafe-inline'; "
	    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
	    "frame-ancestors 'none'");
	return queue(c, MHD_HTTP_OK, r, "text/html; charset=utf-8");
}
