//! Media types read from a file's first bytes (magic numbers), never from a declared
//! `Content-Type` or a file name: an image parameter takes PNG, JPEG, GIF, WEBP, BMP, TIFF, AVIF or
//! HEIC; audio takes FLAC, WAV, MP3, AAC, Ogg or M4A; video takes MP4, QuickTime, WEBM/Matroska,
//! AVI, Ogg or GIF; a mesh takes binary glTF, PLY or ASCII STL.

/// A media type recognised from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// `image/png`, `audio/flac`, ...
    pub mime: &'static str,
    /// The media kinds a parameter may declare that accept it (`image`, `audio`, `video`, `mesh`).
    pub kinds: &'static [&'static str],
}

const IMAGE: &[&str] = &["image"];
const AUDIO: &[&str] = &["audio"];
const VIDEO: &[&str] = &["video"];
const MESH: &[&str] = &["mesh"];
/// A GIF is an image, and also the animation a video parameter takes.
const IMAGE_OR_VIDEO: &[&str] = &["image", "video"];
/// Ogg holds Vorbis or Opus audio, or Theora video.
const AUDIO_OR_VIDEO: &[&str] = &["audio", "video"];

/// The types each media kind accepts, for error messages and the OpenAPI document.
pub fn accepted_types(media: &str) -> &'static [&'static str] {
    match media {
        "image" => &[
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "image/bmp",
            "image/tiff",
            "image/avif",
            "image/heic",
        ],
        "audio" => &[
            "audio/flac",
            "audio/wav",
            "audio/mpeg",
            "audio/aac",
            "audio/ogg",
            "audio/mp4",
        ],
        "video" => &[
            "video/mp4",
            "video/quicktime",
            "video/webm",
            "video/x-msvideo",
            "image/gif",
            "video/ogg",
        ],
        "mesh" => &["model/gltf-binary", "model/ply", "model/stl"],
        _ => &[],
    }
}

/// The media type of `bytes` by their magic numbers.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    let found = |mime, kinds| Some(Sniffed { mime, kinds });
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return found("image/png", IMAGE);
    }
    if at(0, b"\xff\xd8\xff") {
        return found("image/jpeg", IMAGE);
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return found("image/gif", IMAGE_OR_VIDEO);
    }
    if at(0, b"RIFF") {
        if at(8, b"WEBP") {
            return found("image/webp", IMAGE);
        }
        if at(8, b"WAVE") {
            return found("audio/wav", AUDIO);
        }
        if at(8, b"AVI ") {
            return found("video/x-msvideo", VIDEO);
        }
        return None;
    }
    if at(0, b"BM") && bytes.len() >= 26 {
        return found("image/bmp", IMAGE);
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") {
        return found("image/tiff", IMAGE);
    }
    if at(4, b"ftyp") {
        let brand = bytes.get(8..12).unwrap_or_default();
        return match brand {
            b"avif" | b"avis" => found("image/avif", IMAGE),
            b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" => found("image/heic", IMAGE),
            b"M4A " | b"M4B " => found("audio/mp4", AUDIO),
            b"qt  " => found("video/quicktime", VIDEO),
            _ => found("video/mp4", VIDEO),
        };
    }
    if at(0, b"fLaC") {
        return found("audio/flac", AUDIO);
    }
    if at(0, b"OggS") {
        return found("audio/ogg", AUDIO_OR_VIDEO);
    }
    if at(0, b"ID3") {
        return found("audio/mpeg", AUDIO);
    }
    if let [0xff, second, ..] = bytes {
        // ADTS (AAC) has layer bits 00; MPEG audio frames (MP3) have a non-zero layer.
        if second & 0xf6 == 0xf0 {
            return found("audio/aac", AUDIO);
        }
        if second & 0xe0 == 0xe0 && second & 0x06 != 0 {
            return found("audio/mpeg", AUDIO);
        }
    }
    if at(0, b"\x1a\x45\xdf\xa3") {
        return found("video/webm", VIDEO);
    }
    if at(0, b"glTF") {
        return found("model/gltf-binary", MESH);
    }
    if at(0, b"ply\n") || at(0, b"ply\r\n") {
        return found("model/ply", MESH);
    }
    if at(0, b"solid ") {
        return found("model/stl", MESH);
    }
    None
}

/// Why `bytes` do not fit a parameter of media kind `media` (`None` when they do).
pub fn mismatch(media: &str, bytes: &[u8]) -> Option<String> {
    let sniffed = sniff(bytes);
    if sniffed.is_some_and(|s| s.kinds.contains(&media)) {
        return None;
    }
    let seen = sniffed.map_or_else(
        || "not a recognised media format".to_owned(),
        |s| format!("`{}`", s.mime),
    );
    let article = if media == "image" || media == "audio" {
        "an"
    } else {
        "a"
    };
    Some(format!(
        "must be {article} {media} file ({}); its bytes are {seen}",
        accepted_types(media).join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        let cases: [(&[u8], Option<&str>); 14] = [
            (b"\x89PNG\r\n\x1a\nrest", Some("image/png")),
            (b"\xff\xd8\xff\xe0JFIF", Some("image/jpeg")),
            (b"GIF89a...", Some("image/gif")),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"RIFF\0\0\0\0WAVEfmt ", Some("audio/wav")),
            (b"\0\0\0\x18ftypmp42", Some("video/mp4")),
            (b"\0\0\0\x18ftypM4A ", Some("audio/mp4")),
            (b"\0\0\0\x1cftypavif", Some("image/avif")),
            (b"fLaC\0\0\0\x22", Some("audio/flac")),
            (b"ID3\x04\0", Some("audio/mpeg")),
            (b"\xff\xfb\x90\x64", Some("audio/mpeg")),
            (b"\xff\xf1\x50\x80", Some("audio/aac")),
            (b"\x1a\x45\xdf\xa3", Some("video/webm")),
            (b"<html>not media", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(sniff(bytes).map(|s| s.mime), want, "{bytes:?}");
        }
    }

    #[test]
    fn a_parameter_takes_only_its_media_kind() {
        assert_eq!(mismatch("image", b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(mismatch("video", b"GIF89a"), None, "GIF animations are video");
        let message = mismatch("image", b"fLaC\0\0").unwrap();
        assert!(
            message.contains("`audio/flac`") && message.contains("image/png"),
            "{message}"
        );
        let message = mismatch("audio", b"%PDF-1.7").unwrap();
        assert!(message.contains("not a recognised"), "{message}");
    }
}
