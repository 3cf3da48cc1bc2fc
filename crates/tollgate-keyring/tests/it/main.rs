//! End-to-end keyring lifecycle through the public API, with a JSON map standing in for
//! the store: bootstrap, restart, rotate, restart, retire, restart.

use std::collections::BTreeMap;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tollgate_keyring::{
    Error, KeyId, KeyPurpose, KeyRecord, KeyState, Keyring, MasterKey, envelope, verify_ed25519,
};

/// What the store would hold: records by id, persisted as JSON text.
#[derive(Default)]
struct Store(BTreeMap<KeyId, String>);

impl Store {
    fn save(&mut self, records: impl IntoIterator<Item = KeyRecord>) {
        for record in records {
            self.0
                .insert(record.id, serde_json::to_string(&record).unwrap());
        }
    }

    fn load(&self) -> Vec<KeyRecord> {
        self.0
            .values()
            .map(|json| serde_json::from_str(json).unwrap())
            .collect()
    }
}

const T0: OffsetDateTime = datetime!(2026-05-01 12:00 UTC);

#[test]
fn keys_survive_restarts_rotation_and_retirement() {
    // The binary reads the master key from a file, as text.
    let master_text = MasterKey::generate().unwrap().encode();
    let master = MasterKey::from_encoded(&format!("{}\n", *master_text)).unwrap();
    let mut store = Store::default();

    // First start: an empty store gets one active key per purpose.
    let mut keyring = Keyring::open(store.load(), &master).unwrap();
    store.save(keyring.ensure_all(T0).unwrap());
    let signature = keyring
        .sign(KeyPurpose::CheckpointSigning, b"tree head")
        .unwrap();
    let blob = keyring.encrypt(b"oauth client secret", b"apps/7").unwrap();
    let kek = envelope::kek_id(&blob).unwrap();

    // Restart, then rotate both keys.
    let mut keyring = Keyring::open(store.load(), &master).unwrap();
    assert!(
        keyring.ensure_all(T0).unwrap().is_empty(),
        "keys were persisted"
    );
    let day = T0 + Duration::days(1);
    for purpose in [KeyPurpose::CheckpointSigning, KeyPurpose::DataEncryption] {
        let rotation = keyring.rotate(purpose, day, None).unwrap();
        store.save([rotation.new]);
        store.save(rotation.updated);
    }

    // Restart: old signature and old ciphertext still check out.
    let mut keyring = Keyring::open(store.load(), &master).unwrap();
    assert_eq!(
        keyring.get(signature.key_id).unwrap().state,
        KeyState::Retiring
    );
    keyring
        .verify(signature.key_id, b"tree head", &signature.bytes)
        .unwrap();
    assert_ne!(keyring.active(KeyPurpose::DataEncryption).unwrap().id, kek);
    let plain = keyring.decrypt(&blob, b"apps/7").unwrap();
    assert_eq!(plain.as_slice(), b"oauth client secret");

    // A week later the checkpoint key retires; the data key does not.
    let changed = keyring.apply_time(day + Duration::days(7));
    assert_eq!(
        changed.iter().map(|r| (r.id, r.state)).collect::<Vec<_>>(),
        [(signature.key_id, KeyState::Retired)]
    );
    store.save(changed);

    // Restart: the retired key is refused by the keyring but its archived public key
    // still proves the old checkpoint; the old data still decrypts.
    let keyring = Keyring::open(store.load(), &master).unwrap();
    assert!(matches!(
        keyring.verify(signature.key_id, b"tree head", &signature.bytes),
        Err(Error::KeyUnusable {
            state: KeyState::Retired,
            ..
        })
    ));
    let archived = keyring
        .get(signature.key_id)
        .unwrap()
        .public_key
        .clone()
        .unwrap();
    verify_ed25519(&archived, b"tree head", &signature.bytes).unwrap();
    assert!(verify_ed25519(&archived, b"tree heads", &signature.bytes).is_err());
    let plain = keyring.decrypt(&blob, b"apps/7").unwrap();
    assert_eq!(plain.as_slice(), b"oauth client secret");

    // And a different master key cannot open the store at all.
    let other = MasterKey::generate().unwrap();
    assert!(matches!(
        Keyring::open(store.load(), &other),
        Err(Error::WrongMasterKey { .. })
    ));
}
