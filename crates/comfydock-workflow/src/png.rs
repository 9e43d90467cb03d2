//! Workflows embedded in PNG files: ComfyUI's SaveImage writes the UI workflow to a `workflow` text
//! chunk and the API prompt to a `prompt` text chunk.

use std::io::Read;

use crate::document::WorkflowDocument;
use crate::error::WorkflowError;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
/// Text chunks larger than this are not decompressed further (bounded memory on hostile files).
const MAX_TEXT_BYTES: u64 = 512 * 1024 * 1024;

/// Why embedded workflows could not be read from PNG bytes.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("not a PNG file (signature missing)")]
    NotPng,
    #[error("PNG is truncated or corrupt at byte {offset}")]
    Truncated { offset: usize },
    #[error("compressed PNG text chunk `{keyword}` could not be inflated")]
    BadCompressedText {
        keyword: String,
        #[source]
        source: std::io::Error,
    },
    #[error("PNG text chunk `{keyword}` does not hold a workflow")]
    BadWorkflow {
        keyword: String,
        #[source]
        source: WorkflowError,
    },
}

/// The workflows found in a PNG's text chunks.
#[derive(Debug, Clone, Default)]
pub struct PngWorkflows {
    /// The UI workflow from the `workflow` chunk.
    pub workflow: Option<WorkflowDocument>,
    /// The API prompt from the `prompt` chunk.
    pub prompt: Option<WorkflowDocument>,
}

/// A text chunk (`tEXt`, `zTXt` or `iTXt`) read from a PNG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    pub keyword: String,
    pub text: String,
}

/// Reads every text chunk of a PNG (chunk CRCs are not checked).
pub fn text_chunks(bytes: &[u8]) -> Result<Vec<TextChunk>, PngError> {
    if bytes.len() < SIGNATURE.len() || &bytes[..SIGNATURE.len()] != SIGNATURE {
        return Err(PngError::NotPng);
    }
    let mut chunks = Vec::new();
    let mut offset = SIGNATURE.len();
    while offset < bytes.len() {
        let header = bytes
            .get(offset..offset + 8)
            .ok_or(PngError::Truncated { offset })?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        let data_start = offset + 8;
        let data_end = data_start
            .checked_add(length)
            .ok_or(PngError::Truncated { offset })?;
        let data = bytes
            .get(data_start..data_end)
            .ok_or(PngError::Truncated { offset })?;
        match &kind {
            b"tEXt" => chunks.push(read_text(data)),
            b"zTXt" => chunks.push(read_compressed_text(data)?),
            b"iTXt" => {
                if let Some(chunk) = read_international_text(data)? {
                    chunks.push(chunk);
                }
            }
            b"IEND" => break,
            _ => {}
        }
        offset = data_end.checked_add(4).ok_or(PngError::Truncated { offset })?;
    }
    Ok(chunks)
}

/// Extracts and parses the `workflow` (UI) and `prompt` (API) chunks.
pub fn extract_workflows(bytes: &[u8]) -> Result<PngWorkflows, PngError> {
    let mut found = PngWorkflows::default();
    for chunk in text_chunks(bytes)? {
        let slot = match chunk.keyword.as_str() {
            "workflow" => &mut found.workflow,
            "prompt" => &mut found.prompt,
            _ => continue,
        };
        if slot.is_none() {
            let document = WorkflowDocument::parse(&chunk.text).map_err(|source| PngError::BadWorkflow {
                keyword: chunk.keyword.clone(),
                source,
            })?;
            *slot = Some(document);
        }
    }
    Ok(found)
}

fn split_keyword(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(nul) => (latin1(&data[..nul]), &data[nul + 1..]),
        None => (latin1(data), &[]),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn read_text(data: &[u8]) -> TextChunk {
    let (keyword, rest) = split_keyword(data);
    // Text chunks are Latin-1 by spec, but ComfyUI (via Pillow) writes UTF-8 JSON escapes; accept UTF-8 first.
    let text = String::from_utf8(rest.to_vec()).unwrap_or_else(|_| latin1(rest));
    TextChunk { keyword, text }
}

fn inflate(keyword: &str, compressed: &[u8]) -> Result<Vec<u8>, PngError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_TEXT_BYTES)
        .read_to_end(&mut out)
        .map_err(|source| PngError::BadCompressedText {
            keyword: keyword.to_owned(),
            source,
        })?;
    Ok(out)
}

fn read_compressed_text(data: &[u8]) -> Result<TextChunk, PngError> {
    let (keyword, rest) = split_keyword(data);
    let compressed = rest.get(1..).unwrap_or_default();
    let raw = inflate(&keyword, compressed)?;
    let text = String::from_utf8(raw).unwrap_or_else(|e| latin1(e.as_bytes()));
    Ok(TextChunk { keyword, text })
}

fn read_international_text(data: &[u8]) -> Result<Option<TextChunk>, PngError> {
    let (keyword, rest) = split_keyword(data);
    let [flag, _method, rest @ ..] = rest else {
        return Ok(None);
    };
    // Skip language tag and translated keyword (each NUL-terminated).
    let mut rest = rest;
    for _ in 0..2 {
        match rest.iter().position(|&b| b == 0) {
            Some(nul) => rest = &rest[nul + 1..],
            None => return Ok(None),
        }
    }
    let raw = if *flag == 1 {
        inflate(&keyword, rest)?
    } else {
        rest.to_vec()
    };
    let text = String::from_utf8_lossy(&raw).into_owned();
    Ok(Some(TextChunk { keyword, text }))
}
