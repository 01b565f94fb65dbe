//! Reading PostgreSQL's binary `COPY ... TO STDOUT` stream: the fast way to bring many
//! rows into the client (history reads for training, portfolio metrics).
//!
//! Why not diesel's row decoding: it costs several microseconds per row (libpq result
//! accessors per field, a row object per row, an owned value per column). A binary COPY
//! streams the same values as a flat byte stream; decoding it is a few length-prefixed
//! reads per row, and a reader allocates only what it keeps.
//!
//! The values are the same as diesel's: text arrives as its UTF-8 bytes (diesel sets
//! `client_encoding` to UTF8), `BIGINT` and `INTEGER` as big-endian two's complement.

use std::io::{BufRead, Read};

use diesel::connection::SimpleConnection;
use diesel::pg::{CopyFormat, CopyTarget, PgConnection};

use crate::error::{Result, StoreError};

/// Declares a COPY source: a unit struct `$name` whose `COPY ... TO` reads `$sql` (a
/// `&str` expression, a parenthesized SELECT). `CopyTarget` is how diesel names what a
/// COPY reads; it has no `self`, so the SQL is static (parameters go through
/// transaction-local settings). Its `walk_target` is hidden from diesel's docs but
/// public, and `Cargo.lock` pins diesel.
macro_rules! copy_source {
    ($name:ident, $table:ident, $sql:expr) => {
        #[derive(Debug, Clone, Copy)]
        struct $name;

        impl diesel::pg::CopyTarget for $name {
            type Table = $table::table;
            type SqlType = <$table::table as diesel::pg::CopyTarget>::SqlType;

            fn walk_target(
                mut pass: diesel::query_builder::AstPass<'_, '_, diesel::pg::Pg>,
            ) -> diesel::QueryResult<()> {
                let sql: &str = &$sql;
                pass.push_sql(sql);
                Ok(())
            }
        }
    };
}
pub(crate) use copy_source;

/// What a COPY's rows are handed to, one at a time, positioned at the row's first field.
pub(crate) trait RowSink {
    /// Fields per row: a row with another count is an error.
    fn fields(&self) -> i16;
    /// Reads the row's fields, in order, every one of them.
    fn row<R: BufRead>(&mut self, fields: &mut Fields<R>) -> Result<()>;
}

/// A table row decoded from a binary COPY of its table's columns in declaration order.
/// `statement_row!` (`events/write.rs`) implements it from the same column list that
/// drives the inserts, so the reader cannot drift from the writer.
pub(crate) trait CopyRow: Sized {
    type Table: diesel::Table + CopyTarget;
    fn from_fields<R: BufRead>(fields: &mut Fields<R>) -> Result<Self>;
}

/// Reads one field of a `statement_row!` column type.
macro_rules! copy_field {
    ($r:expr, Text) => {
        $r.string()?
    };
    ($r:expr, OptText) => {
        $r.opt_string()?
    };
    ($r:expr, BigInt) => {
        $r.i64()?
    };
    ($r:expr, OptBigInt) => {
        $r.opt_i64()?
    };
    ($r:expr, Integer) => {
        $r.i32()?
    };
    ($r:expr, OptInteger) => {
        $r.opt_i32()?
    };
    ($r:expr, Float) => {
        $r.f32()?
    };
}
pub(crate) use copy_field;

/// Runs one binary COPY of `source` and hands each row to `sink`.
pub(crate) fn copy_out<T: CopyTarget, S: RowSink>(
    conn: &mut PgConnection,
    source: T,
    sink: &mut S,
) -> Result<()> {
    let raw = diesel::copy_to(source)
        .with_format(CopyFormat::Binary)
        .load_raw(conn)?;
    let mut rows = Fields::new(raw);
    let result = (|| {
        rows.header()?;
        while rows.next_row(sink.fields())? {
            sink.row(&mut rows)?;
            // A sink that read fewer fields than the row holds has a field list out of
            // step with its statement's columns.
            if rows.pos != rows.row.len() {
                return Err(bad("a row's fields were not all read"));
            }
        }
        rows.end()
    })();
    if result.is_err() {
        // Read what is left rather than leave the connection in the middle of a COPY.
        let _ = std::io::copy(&mut rows.input, &mut std::io::sink());
    }
    drop(rows);
    // diesel's COPY reader stops at the end of the data and leaves the statement's
    // completion unread, so the next diesel query would fail with "another command is
    // already in progress". `batch_execute` goes through libpq's `PQexec`, which first
    // collects that completion (and drops any COPY data still unread), then runs its own
    // statement: afterwards the connection is ready for anything, including the pool.
    let finished = conn.batch_execute("SELECT 'copy finished'");
    result?;
    finished?;
    Ok(())
}

/// PostgreSQL's binary COPY stream: a signature, flags and a header extension, then per
/// row a field count and per field a length (-1 for NULL) and that many bytes, then a
/// field count of -1.
///
/// Each row is first taken whole into `row` (libpq hands over one row per buffer, so this
/// is one bounds walk and one copy of a few dozen bytes), then its fields are read from
/// memory: no `Read` call per field, which had been a fifth of a reader's time. A row
/// split across buffers (not what libpq does, but not excluded) is assembled through
/// `Read`, so decoding never depends on how the stream was split.
pub(crate) struct Fields<R> {
    input: R,
    /// The current row's fields: lengths and bytes, without the field count.
    row: Vec<u8>,
    /// Where the next field starts in `row`.
    pos: usize,
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The length of the row at the start of `buf` (its field count included) if `buf` holds
/// all of it and it has `fields` fields.
fn whole_row(buf: &[u8], fields: i16) -> Option<usize> {
    let count = i16::from_be_bytes([*buf.first()?, *buf.get(1)?]);
    if count != fields {
        return None;
    }
    let mut at = 2usize;
    for _ in 0..fields {
        let len = buf.get(at..at + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len > 0 {
            at = at.checked_add(usize::try_from(len).ok()?)?;
        }
    }
    (at <= buf.len()).then_some(at)
}

impl<R: BufRead> Fields<R> {
    pub(crate) fn new(input: R) -> Self {
        Self {
            input,
            row: Vec::new(),
            pos: 0,
        }
    }

    fn header(&mut self) -> Result<()> {
        let mut head = [0u8; 19];
        self.read(&mut head)?;
        if &head[..11] != SIGNATURE {
            return Err(bad(
                "the stream does not start with the binary COPY signature",
            ));
        }
        // Bit 16 (OIDs included) and the other critical bits must be clear.
        if u32::from_be_bytes([head[11], head[12], head[13], head[14]]) & 0xffff_0000 != 0 {
            return Err(bad("the COPY header has unsupported flags"));
        }
        let extension = u32::from_be_bytes([head[15], head[16], head[17], head[18]]);
        std::io::copy(
            &mut (&mut self.input).take(u64::from(extension)),
            &mut std::io::sink(),
        )
        .map_err(io)?;
        Ok(())
    }

    /// Takes the next row: true if there is one, false at the end of the stream.
    fn next_row(&mut self, fields: i16) -> Result<bool> {
        self.row.clear();
        self.pos = 0;
        let buf = self.input.fill_buf().map_err(io)?;
        if let Some(len) = whole_row(buf, fields) {
            self.row.extend_from_slice(&buf[2..len]);
            self.input.consume(len);
            return Ok(true);
        }
        // The slow path: field by field through `Read`.
        let mut count = [0u8; 2];
        self.read(&mut count)?;
        match i16::from_be_bytes(count) {
            -1 => return Ok(false),
            n if n == fields => {}
            n => return Err(bad(&format!("a row has {n} fields, expected {fields}"))),
        }
        for _ in 0..fields {
            let mut len = [0u8; 4];
            self.read(&mut len)?;
            self.row.extend_from_slice(&len);
            let len = i32::from_be_bytes(len);
            if len > 0 {
                let start = self.row.len();
                let len = usize::try_from(len).map_err(|_| bad("a field is too long"))?;
                self.row.resize(start + len, 0);
                read_exact(&mut self.input, &mut self.row[start..])?;
            }
        }
        Ok(true)
    }

    /// After the trailer: nothing may follow. (The stream ending early, without a
    /// trailer, is an error in `read`: a COPY the server aborted is never taken as complete.)
    fn end(&mut self) -> Result<()> {
        if self.input.fill_buf().map_err(io)?.is_empty() {
            Ok(())
        } else {
            Err(bad("data after the COPY trailer"))
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<()> {
        read_exact(&mut self.input, buf)
    }

    /// The next field's bytes, or None for NULL. Lengths were checked when the row was
    /// taken, so reading past the row means a row shorter than its own lengths say.
    fn field(&mut self) -> Result<Option<&[u8]>> {
        let len = self
            .row
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| bad("a row has fewer fields than it should"))?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.pos += 4;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| bad(&format!("a field has length {len}")))?;
        let start = self.pos;
        self.pos += len;
        self.row
            .get(start..start + len)
            .map(Some)
            .ok_or_else(|| bad("a field runs past its row"))
    }

    fn not_null(&mut self) -> Result<&[u8]> {
        self.field()?
            .ok_or_else(|| bad("NULL in a column that is NOT NULL"))
    }

    fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N]> {
        bytes.try_into().map_err(|_| {
            bad(&format!(
                "a fixed-size field of {} bytes, expected {N}",
                bytes.len()
            ))
        })
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Self::fixed::<8>(self.not_null()?).map(i64::from_be_bytes)
    }

    pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>> {
        match self.field()? {
            None => Ok(None),
            Some(b) => Self::fixed::<8>(b).map(|v| Some(i64::from_be_bytes(v))),
        }
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Self::fixed::<4>(self.not_null()?).map(i32::from_be_bytes)
    }

    pub(crate) fn f32(&mut self) -> Result<f32> {
        Self::fixed::<4>(self.not_null()?).map(f32::from_be_bytes)
    }

    pub(crate) fn opt_i32(&mut self) -> Result<Option<i32>> {
        match self.field()? {
            None => Ok(None),
            Some(b) => Self::fixed::<4>(b).map(|v| Some(i32::from_be_bytes(v))),
        }
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        Self::fixed::<1>(self.not_null()?).map(|[b]| b != 0)
    }

    /// A text field into a `String` of its own: the one allocation it needs.
    pub(crate) fn string(&mut self) -> Result<String> {
        text(self.not_null()?)
    }

    pub(crate) fn opt_string(&mut self) -> Result<Option<String>> {
        self.field()?.map(text).transpose()
    }

    /// A text field's bytes, borrowed until the next read: for values that need no copy.
    pub(crate) fn bytes(&mut self) -> Result<&[u8]> {
        self.not_null()
    }
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad("a text field is not UTF-8"))
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            StoreError::Unavailable("a COPY from PostgreSQL ended early".into())
        } else {
            io(e)
        }
    })
}

fn bad(what: &str) -> StoreError {
    StoreError::Internal(format!("reading a binary COPY: {what}"))
}

fn io(e: std::io::Error) -> StoreError {
    // A failed read of COPY data means libpq lost the connection or the server aborted
    // the statement: either way the database, not the data, is the problem.
    StoreError::Unavailable(format!("reading a binary COPY: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of the header and two rows of (text, bigint, NULL), then the trailer.
    fn stream() -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend_from_slice(&0u32.to_be_bytes());
        s.extend_from_slice(&0u32.to_be_bytes());
        for (text, n) in [("alpha", 7i64), ("", -3)] {
            s.extend_from_slice(&3i16.to_be_bytes());
            s.extend_from_slice(&(text.len() as i32).to_be_bytes());
            s.extend_from_slice(text.as_bytes());
            s.extend_from_slice(&8i32.to_be_bytes());
            s.extend_from_slice(&n.to_be_bytes());
            s.extend_from_slice(&(-1i32).to_be_bytes());
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        s
    }

    fn decode(input: impl BufRead) -> Result<Vec<(String, i64, Option<i64>)>> {
        let mut f = Fields::new(input);
        f.header()?;
        let mut out = Vec::new();
        while f.next_row(3)? {
            out.push((f.string()?, f.i64()?, f.opt_i64()?));
        }
        f.end()?;
        Ok(out)
    }

    #[test]
    fn rows_decode_alike_whole_or_split_across_buffers() {
        let s = stream();
        let expected = vec![("alpha".to_owned(), 7, None), (String::new(), -3, None)];
        assert_eq!(decode(&s[..]).expect("whole"), expected);
        // Buffers of 3 bytes: every row takes the field-by-field path.
        let split = std::io::BufReader::with_capacity(3, &s[..]);
        assert_eq!(decode(split).expect("split"), expected);
    }

    #[test]
    fn broken_streams_are_errors_not_panics() {
        let s = stream();
        // Cut inside the second row.
        assert!(decode(&s[..s.len() - 10]).is_err());
        // Wrong field count.
        let mut f = Fields::new(&s[..]);
        f.header().expect("header");
        assert!(f.next_row(4).is_err());
        // A row whose field says it is longer than the row.
        let mut bad = s.clone();
        let first_len = 19 + 2;
        bad[first_len..first_len + 4].copy_from_slice(&1000i32.to_be_bytes());
        assert!(decode(&bad[..]).is_err());
        // Data after the trailer.
        let mut extra = s.clone();
        extra.push(0);
        assert!(decode(&extra[..]).is_err());
        // A bigint field of the wrong size.
        let mut short = s;
        let n_len = 19 + 2 + 4 + 5;
        short[n_len..n_len + 4].copy_from_slice(&4i32.to_be_bytes());
        assert!(decode(&short[..]).is_err());
    }
}
