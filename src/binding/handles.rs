//! The connections this thread's JavaScript holds, by handle number. JavaScript's `NativeConnection`
//! (lib/native-connection.js) is a plain object with that number, and each of its methods is a module function
//! taking it (see `connection`). A handle keeps its connection until the object is collected, when a
//! FinalizationRegistry releases it: what a wrapped native object gives, without the napi reference, wrapper box,
//! reference-map entry, External and type tag each wrapped object costs (about 350 bytes per connection).

use std::cell::RefCell;
use std::sync::Arc;

use napi::bindgen_prelude::*;

use crate::net::Conn;

/// Values by number, numbers of released ones given out again.
struct Handles<T> {
    held: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Handles<T> {
    const fn new() -> Self {
        Handles { held: Vec::new(), free: Vec::new() }
    }

    fn hold(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.held[id as usize] = Some(value);
                id
            }
            None => {
                self.held.push(Some(value));
                (self.held.len() - 1) as u32
            }
        }
    }

    fn get(&self, id: u32) -> Option<&T> {
        self.held.get(id as usize)?.as_ref()
    }

    fn release(&mut self, id: u32) -> Option<T> {
        let value = self.held.get_mut(id as usize)?.take()?;
        self.free.push(id);
        Some(value)
    }
}

thread_local! {
    static CONNECTIONS: RefCell<Handles<Arc<Conn>>> = const { RefCell::new(Handles::new()) };
}

/// A new handle for `conn` on this thread.
pub(super) fn hold(conn: Arc<Conn>) -> u32 {
    CONNECTIONS.with(|h| h.borrow_mut().hold(conn))
}

/// Runs `f` on the connection of handle `id`. `f` must not make or release handles.
pub(super) fn with<T>(id: u32, f: impl FnOnce(&Arc<Conn>) -> Result<T>) -> Result<T> {
    CONNECTIONS.with(|h| match h.borrow().get(id) {
        Some(conn) => f(conn),
        None => Err(Error::new(Status::InvalidArg, "not a handle of a connection of this thread")),
    })
}

/// The handle's object was collected: its number may be given out again.
pub(super) fn release(id: u32) {
    // Dropped outside the borrow: the last reference to a connection ends it, which must not find the table borrowed.
    let conn = CONNECTIONS.with(|h| h.borrow_mut().release(id));
    drop(conn);
}

/// The thread's JavaScript environment is gone, and every object with it: the connections its handles held.
pub(super) fn release_all() -> impl Iterator<Item = Arc<Conn>> {
    let all = CONNECTIONS.with(|h| std::mem::replace(&mut *h.borrow_mut(), Handles::new()));
    all.held.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_number_is_given_out_again() {
        let mut handles = Handles::new();
        let (a, b) = (handles.hold("a"), handles.hold("b"));
        assert_ne!(a, b);
        assert_eq!(handles.get(b), Some(&"b"));
        assert_eq!(handles.release(a), Some("a"));
        assert_eq!(handles.get(a), None);
        assert_eq!(handles.release(a), None, "a second release of a number is nothing");
        assert_eq!(handles.hold("c"), a);
        assert_eq!(handles.get(a), Some(&"c"));
        assert_eq!(handles.get(99), None);
        assert_eq!(handles.release(99), None);
    }
}
