//! Device logins: pending, approved once, a fresh code per poll, expired.

use sgl_grid_store::Store;
use sgl_grid_store::devices::{ApproveDeviceError, DeviceLoginState};
use sgl_grid_store::registration::ConsumeCodeError;

const NOW: i64 = 1_700_000_000_000;

pub(crate) async fn device_logins_are_approved_once_and_expire(store: &Store) {
    store.create_device_login("d1", "ABCD-EFGH", NOW, NOW + 600_000).await.unwrap();
    store.create_device_login("d2", "WXYZ-2345", NOW, NOW + 10).await.unwrap();
    assert!(store.create_device_login("d3", "ABCD-EFGH", NOW, NOW + 1).await.is_err(), "user codes are unique");
    assert_eq!(store.poll_device_login("d1", NOW).await.unwrap(), Some(DeviceLoginState::Pending));
    assert_eq!(store.poll_device_login("nope", NOW).await.unwrap(), None);
    assert!(!store.issue_device_registration_code("d1", "h0", NOW).await.unwrap(), "not approved yet");
    store.approve_device_login("ABCD-EFGH", "0xw", NOW + 1).await.unwrap();
    let again = store.approve_device_login("ABCD-EFGH", "0xevil", NOW + 2).await;
    assert!(matches!(again, Err(ApproveDeviceError::AlreadyApproved)));
    let approved = store.poll_device_login("d1", NOW + 3).await.unwrap();
    assert_eq!(approved, Some(DeviceLoginState::Approved { wallet: "0xw".into() }));
    // Each poll issues a fresh code and retires the unused previous one.
    assert!(store.issue_device_registration_code("d1", "h1", NOW + 3).await.unwrap());
    assert!(store.issue_device_registration_code("d1", "h2", NOW + 4).await.unwrap());
    let retired = store.consume_registration_code("h1", "0xw", "node", NOW + 5).await;
    assert!(matches!(retired, Err(ConsumeCodeError::Unknown)));
    store.consume_registration_code("h2", "0xw", "node", NOW + 5).await.unwrap();
    assert!(matches!(store.approve_device_login("WXYZ-2345", "0xw", NOW + 10).await, Err(ApproveDeviceError::Expired)));
    assert!(matches!(store.approve_device_login("NOPE-NOPE", "0xw", NOW).await, Err(ApproveDeviceError::Unknown)));
    assert_eq!(store.poll_device_login("d2", NOW + 10).await.unwrap(), Some(DeviceLoginState::Expired));
    assert_eq!(store.poll_device_login("d1", NOW + 600_000).await.unwrap(), Some(DeviceLoginState::Expired));
}
