//! Archive file names: the seed's `backup_{type}_v{version}_{YYYY-MM-DD_HH-MM-SS}.tar.gz`, in UTC, or `.tar.zst`.

use chrono::{DateTime, Utc};

use super::Format;

/// The name of a backup archive, with the extension of its `format`. `attempt` 1 gives the seed's name; later
/// attempts (another archive already holds that name, e.g. two runs in the same second) add `_2`, `_3`, … before the
/// extension.
pub fn archive_file_name(kind: &str, version: &str, at: DateTime<Utc>, attempt: u32, format: Format) -> String {
    let stamp = at.format("%Y-%m-%d_%H-%M-%S");
    let version = sanitize(version);
    let extension = format.extension();
    if attempt <= 1 {
        format!("backup_{kind}_v{version}_{stamp}.{extension}")
    } else {
        format!("backup_{kind}_v{version}_{stamp}_{attempt}.{extension}")
    }
}

/// Whether `name` is one `archive_file_name` gives: a backup archive in storage (complete; temporary ones start
/// with a dot).
pub fn is_archive_name(name: &str) -> bool {
    name.starts_with("backup_")
        && Format::ALL
            .iter()
            .any(|f| name.ends_with(&format!(".{}", f.extension())))
}

/// Keeps a version usable inside a file name: anything but letters, digits, `.`, `-`, `+` becomes `_`.
fn sanitize(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{archive_file_name, is_archive_name};
    use crate::Format;
    use chrono::{TimeZone, Utc};

    #[test]
    fn an_archive_is_told_by_its_name() {
        let at = Utc.with_ymd_and_hms(2023, 12, 1, 14, 30, 25).unwrap();
        for format in Format::ALL {
            assert!(is_archive_name(&archive_file_name("manual", "1", at, 2, format)));
        }
        assert!(!is_archive_name(".backup_manual_v1.tar.gz.partial"));
        assert!(!is_archive_name("catalog.db"));
    }

    #[test]
    fn first_attempt_has_the_seeds_name() {
        let at = Utc.with_ymd_and_hms(2023, 12, 1, 14, 30, 25).unwrap();
        assert_eq!(
            archive_file_name("pre-upgrade", "1.2.3", at, 1, Format::Gzip),
            "backup_pre-upgrade_v1.2.3_2023-12-01_14-30-25.tar.gz"
        );
    }

    #[test]
    fn later_attempts_in_the_same_second_get_a_suffix() {
        let at = Utc.with_ymd_and_hms(2023, 12, 2, 9, 15, 45).unwrap();
        assert_eq!(
            archive_file_name("manual", "1.2.3", at, 2, Format::Gzip),
            "backup_manual_v1.2.3_2023-12-02_09-15-45_2.tar.gz"
        );
    }

    #[test]
    fn a_version_cannot_escape_the_storage_dir() {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            archive_file_name("manual", "../x/1", at, 1, Format::Gzip),
            "backup_manual_v.._x_1_2024-01-01_00-00-00.tar.gz"
        );
    }

    #[test]
    fn a_zstd_archive_ends_in_tar_zst() {
        let at = Utc.with_ymd_and_hms(2023, 12, 2, 9, 15, 45).unwrap();
        assert_eq!(
            archive_file_name("manual", "1.2.3", at, 1, Format::Zstd),
            "backup_manual_v1.2.3_2023-12-02_09-15-45.tar.zst"
        );
        assert_eq!(
            archive_file_name("manual", "1.2.3", at, 3, Format::Zstd),
            "backup_manual_v1.2.3_2023-12-02_09-15-45_3.tar.zst"
        );
    }
}
