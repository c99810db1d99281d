namespace MLNetTransformerExtensions.Tests;

/// <summary>
/// Faults that are hard to cause for real, made deterministic: a disk that fills part-way through a write (a stream
/// that fails as the kernel does), and a file system that is really full (a small tmpfs, mounted when the tests run as
/// root, as CI does).
/// </summary>
internal static class FaultInjection
{
    /// <summary>
    /// Opens a new file as the writers do, but fails with "No space left on device" once <paramref name="capacity"/>
    /// bytes are in it; the bytes that fit are written, as a real full disk writes them.
    /// </summary>
    public static Func<string, Stream> DiskFullAfter(long capacity) =>
        path => new FillingStream(new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None), capacity);

    /// <summary>The files left in <paramref name="folder"/>, by name, in ordinal order (hidden temporary files included).</summary>
    public static string[] FilesIn(string folder) =>
        [.. Directory.GetFiles(folder).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal)];

    private sealed class FillingStream(FileStream inner, long capacity) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value)
        {
            if (value > capacity)
            {
                throw Full();
            }

            inner.SetLength(value);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var room = (int)Math.Clamp(capacity - inner.Position, 0, buffer.Length);
            inner.Write(buffer[..room]);
            if (room < buffer.Length)
            {
                inner.Flush();
                throw Full();
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private static IOException Full() => new("No space left on device", 28 /* ENOSPC */);
    }
}

/// <summary>
/// A tmpfs of a few hundred kilobytes in a temporary folder, and a way to fill it: a real full disk. Mounting needs
/// root (CI runs as root); <see cref="TryMount"/> says why when it cannot.
/// </summary>
internal sealed class SmallFileSystem : IDisposable
{
    private SmallFileSystem(string folder) => Folder = folder;

    public string Folder { get; }

    public static SmallFileSystem? TryMount(int kilobytes, out string reason)
    {
        reason = string.Empty;
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            reason = "mounting a tmpfs needs Linux and root; the stream that fails part-way holds the same promise";
            return null;
        }

        var folder = TestPaths.NewTempDirectory();
        var (exit, _, stderr) = TestPaths.Run("mount", $"-t tmpfs -o size={kilobytes}k tmpfs \"{folder}\"", folder, TimeSpan.FromMinutes(2));
        if (exit != 0)
        {
            Directory.Delete(folder);
            reason = $"mount -t tmpfs failed ({stderr.Trim()}); the stream that fails part-way holds the same promise";
            return null;
        }

        return new SmallFileSystem(folder);
    }

    /// <summary>Fills every free byte with a file named <c>filler</c>, so that the next write of any size fails.</summary>
    public void Fill()
    {
        using var filler = new FileStream(Path.Combine(Folder, "filler"), FileMode.Append, FileAccess.Write, FileShare.None, bufferSize: 0);
        var block = new byte[4096];
        try
        {
            while (true)
            {
                filler.Write(block);
            }
        }
        catch (IOException)
        {
            // Full.
        }
    }

    public void Dispose()
    {
        TestPaths.Run("umount", $"\"{Folder}\"", Path.GetTempPath(), TimeSpan.FromMinutes(2));
        Directory.Delete(Folder, recursive: true);
    }
}
