namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// An exclusive lock on a file under <c>{cache}/.locks/</c>, held while one blob is downloaded so that concurrent
/// processes never write the same blob. .NET takes <see cref="FileShare.None"/> as <c>flock</c> on Unix, the lock
/// Python's <c>filelock</c> takes on the same file, so .NET and Python processes also exclude each other. The
/// operating system releases the lock when its process dies: a crash never leaves a stale lock behind.
/// </summary>
internal static class HubFileLock
{
    // Windows reports a held lock as a sharing or lock violation; on Unix the HResult is flock's errno, EWOULDBLOCK.
    private const int SharingViolation = unchecked((int)0x80070020);
    private const int LockViolation = unchecked((int)0x80070021);
    private static readonly int WouldBlock = OperatingSystem.IsLinux() ? 11 : 35;

    /// <summary>Waits, as long as it takes, until this process holds the lock; dispose the result to release it.</summary>
    internal static async Task<FileStream> AcquireAsync(string lockPath, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        var wait = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
            }
            catch (IOException e) when (IsHeldElsewhere(e))
            {
                // Another process is downloading this blob; once it is done we find the blob in place.
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                wait = TimeSpan.FromMilliseconds(Math.Min(wait.TotalMilliseconds * 2, 500));
            }
        }
    }

    private static bool IsHeldElsewhere(IOException e) =>
        OperatingSystem.IsWindows() ? e.HResult is SharingViolation or LockViolation : e.HResult == WouldBlock;
}
