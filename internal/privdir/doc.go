// Package privdir creates and checks the agent's private directories: the
// data directory and the script staging directories, which only the
// agent's own account (and on Windows SYSTEM and Administrators) may write.
//
// The agent runs scripts as root or SYSTEM from files it stages. If another
// local user could write the directory those files live in, they could swap
// a script between the moment the agent writes it and the moment it runs,
// and so run code as root or SYSTEM. On Windows %ProgramData% lets every
// user create folders, so a user can even create the agent's data directory
// before the agent first starts.
//
// # Rules
//
// [Ensure] creates a directory whose access is right from the moment it
// exists (no window in which it has an inherited ACL or a wider mode), or
// checks one that already exists:
//
//   - Unix: os.Mkdir with mode 0700. An existing path must be a directory,
//     not a symbolic link (it is opened with O_NOFOLLOW), owned by the
//     effective uid and not writable by group or others; other mode bits
//     are reset to 0700 (Reset).
//   - Windows: CreateDirectory with a protected DACL (no inheritance from
//     the parent) that grants full control to SYSTEM, Administrators and
//     the agent's own account when it is neither, inherited by everything
//     created below. An existing path must be a directory, not a reparse
//     point (junction or symbolic link), owned by SYSTEM, Administrators or
//     the agent's own account. When its DACL is not protected or grants
//     anything to another account, it is replaced by the one above (Reset).
//
// Anything else is refused with an error wrapping [ErrUnsafe] that names
// the path, the owner and what to do; nothing is changed then.
//
// [MkdirFresh] creates a new directory with an unguessable name, private to
// the agent's own account (0700 on Unix; on Windows a protected DACL that
// grants full control to SYSTEM and the agent's account only), failing if
// the name exists. The agent stages each script run in one.
package privdir
