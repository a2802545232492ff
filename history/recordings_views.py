"""A call's recording for the browser's <audio>: to the people who may see the call
(`CallRecord.objects.visible_to`), with byte ranges (seeking), or handed to nginx.

The file is read from CALL_RECORDINGS_ROOT (the mount of the PBX's folder) under the row's
`recording_file`; a name that is not a plain relative path, or that leads outside the folder
(`..`, a symlink), is never opened (history.recordings.local_path). With
CALL_RECORDINGS_ACCEL_PREFIX set, the view checks the right and answers `X-Accel-Redirect`: nginx
sends the bytes, ranges included, from its `internal` location (deploy/nginx-dashboard.conf).

Ranges (RFC 9110): one `bytes=` range is answered 206 with `Content-Range`; a range past the end
416 with `Content-Range: bytes */<size>`; anything else (no header, several ranges, another unit,
an `If-Range` that no longer matches) gets the whole file, 200, which is always a valid answer.
"""

import asyncio
import logging
import os
import posixpath
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import http_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from history import recordings
from history.models import CallRecord

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024


@login_required
@require_safe
def call_recording(request, pk):
    call = get_object_or_404(CallRecord.objects.visible_to(request.user), pk=pk)
    relative = call.recording_file
    if not relative:
        raise Http404(_("This call has no recording."))
    path = recordings.local_path(relative)
    if path is None:
        logger.warning("call %s: recording_file %r is not a file under CALL_RECORDINGS_ROOT", call.pk, relative)
        raise Http404(_("This call's recording cannot be read."))
    extension = posixpath.splitext(relative)[1].lower()  # plain characters only (is_safe_relative)
    headers = {"Cache-Control": "private, no-cache",
               "Content-Disposition": f'inline; filename="call-{call.pk}{extension}"'}
    if settings.CALL_RECORDINGS_ACCEL_PREFIX:
        response = HttpResponse(content_type=recordings.content_type(relative), headers=headers)
        response["X-Accel-Redirect"] = settings.CALL_RECORDINGS_ACCEL_PREFIX + quote(relative)
        return response
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the stream, or below
    except FileNotFoundError:
        raise Http404(_("The recording file is not on the server (yet).")) from None
    except OSError as exc:
        logger.warning("call %s: cannot open %s: %s", call.pk, path, exc)
        raise Http404(_("This call's recording cannot be read.")) from None
    try:
        stat = os.fstat(handle.fileno())
        size = stat.st_size
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        headers.update({"Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": http_date(stat.st_mtime)})
        asked = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if asked and if_range and if_range not in (etag, headers["Last-Modified"]):
            asked = None  # the file changed since the browser's first part: the whole file
        kind, span = recordings.byte_range(asked, size)
        if kind == recordings.UNSATISFIABLE:
            handle.close()
            return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        status, first, last = (206, *span) if kind == recordings.SATISFIABLE else (200, 0, size - 1)
        length = max(0, last - first + 1)
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        headers["Content-Length"] = str(length)
        content_type = recordings.content_type(relative)
        if request.method == "HEAD":
            handle.close()
            return HttpResponse(status=status, content_type=content_type, headers=headers)
    except BaseException:
        handle.close()
        raise
    return StreamingHttpResponse(_read(handle, first, length), status=status, content_type=content_type,
                                 headers=headers)


async def _read(handle, start, length):
    """The bytes [start, start+length) in chunks, read off the event loop (the mount may be slow)."""
    try:
        await asyncio.to_thread(handle.seek, start)
        left = length
        while left > 0:
            data = await asyncio.to_thread(handle.read, min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        handle.close()
