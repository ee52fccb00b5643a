//! hyper answers a request it cannot parse by itself, before any service code runs:
//! 400 (malformed), 414 (URI longer than it reads) and 431 (head larger than its
//! buffer), each with an empty body and no content type. [`ProblemOnParseError`]
//! wraps the connection and replaces exactly those automatic answers with the
//! problem+json document that every other error of the API has (from `error.rs`).
//! Responses of the API itself always carry a `content-type`, so they are never
//! touched.

use shared::ApiError;
use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct ProblemOnParseError<T> {
    inner: T,
    /// A replacement being written: its bytes, how many are out, and the length of the
    /// buffer it stands for (reported as written once it is all out).
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> ProblemOnParseError<T> {
    pub fn new(inner: T) -> Self {
        Self { inner, pending: None }
    }
}

/// The problem that stands for one of hyper's automatic answers, if `buf` is one.
fn automatic_answer(buf: &[u8]) -> Option<ApiError> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    // Its whole response is a head: no body follows.
    if head_end + 4 != buf.len() {
        return None;
    }
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_ascii_lowercase();
    let status = head
        .strip_prefix("http/1.1 ")
        .or_else(|| head.strip_prefix("http/1.0 "))?
        .get(..3)?;
    let no_body = head.lines().any(|l| l.trim() == "content-length: 0");
    let no_type = !head.lines().any(|l| l.starts_with("content-type:"));
    if !(no_body && no_type) {
        return None;
    }
    match status {
        "400" => Some(ApiError::bad_request("malformed HTTP request")),
        "414" => Some(ApiError::UriTooLong),
        "431" => Some(ApiError::HeaderFieldsTooLarge),
        _ => None,
    }
}

/// The problem response as HTTP/1.1 bytes; the connection closes after it.
fn render(problem: ApiError) -> Vec<u8> {
    let response = problem.into_response();
    let status = response.status();
    let body: &[u8] = match response.body() {
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => b"",
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    for (name, value) in response.headers() {
        if let Ok(value) = value.to_str() {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemOnParseError<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemOnParseError<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            match automatic_answer(buf) {
                Some(problem) => this.pending = Some((render(problem), 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let Some((bytes, sent, stands_for)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *sent < bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        let stands_for = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands each response over as one buffer, which is what
    // `automatic_answer` looks at.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_automatic_answers_are_replaced() {
        let auto = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert!(matches!(automatic_answer(auto), Some(ApiError::HeaderFieldsTooLarge)));
        let auto = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(automatic_answer(auto), Some(ApiError::UriTooLong)));
        // An answer of the API (it has a content type) is left alone, as is anything else.
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert!(automatic_answer(own).is_none());
        assert!(automatic_answer(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(automatic_answer(b"{\"some\":\"body\"}").is_none());
        let rendered = String::from_utf8(render(ApiError::UriTooLong)).unwrap();
        assert!(rendered.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{rendered}");
        assert!(rendered.contains("content-type: application/problem+json\r\n"));
        assert!(rendered.ends_with("\"status\":414,\"detail\":\"the request URI is too long\"}"));
    }
}
