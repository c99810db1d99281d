using System.Buffers.Binary;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace MLNetTransformerExtensions.Builtin;

/// <summary>
/// Reads the manifest resources embedded in an assembly file without loading the assembly: the file's CLI header
/// locates the resources section, where each resource is a 4-byte little-endian length followed by its bytes.
/// </summary>
internal static class ManifestResourceFile
{
    /// <summary>Where a resource's bytes lie in the file.</summary>
    public readonly record struct Location(long Offset, long Length);

    /// <summary>Finds every resource embedded in the file (linked resources, which live in other files, are skipped).</summary>
    /// <exception cref="BadImageFormatException">The file is not a .NET assembly, or its headers are damaged.</exception>
    public static IReadOnlyDictionary<string, Location> Locate(string assemblyPath)
    {
        using var file = new FileStream(assemblyPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = file.Length;
        var found = new Dictionary<string, Location>(StringComparer.Ordinal);
        int directoryOffset;
        using (var pe = new PEReader(file, PEStreamOptions.LeaveOpen))
        {
            if (!pe.HasMetadata || pe.PEHeaders.CorHeader is null)
            {
                throw new BadImageFormatException($"'{assemblyPath}' is not a .NET assembly (it has no CLI header).");
            }

            var metadata = pe.GetMetadataReader();
            if (!pe.PEHeaders.TryGetDirectoryOffset(pe.PEHeaders.CorHeader.ResourcesDirectory, out directoryOffset))
            {
                return found;
            }

            foreach (var handle in metadata.ManifestResources)
            {
                var resource = metadata.GetManifestResource(handle);
                if (resource.Implementation.IsNil)
                {
                    found[metadata.GetString(resource.Name)] = new Location(directoryOffset + resource.Offset, -1);
                }
            }
        }

        // The length prefixes are read from the file itself: the metadata only gives each resource's start.
        Span<byte> prefix = stackalloc byte[4];
        foreach (var (name, location) in found)
        {
            if (location.Offset + 4 > fileLength)
            {
                throw new BadImageFormatException($"Resource '{name}' of '{assemblyPath}' starts past the end of the file ({fileLength} bytes): the file is truncated.");
            }

            file.Position = location.Offset;
            file.ReadExactly(prefix);
            long length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
            if (location.Offset + 4 + length > fileLength)
            {
                throw new BadImageFormatException($"Resource '{name}' of '{assemblyPath}' claims {length} bytes, more than the file holds: the file is truncated.");
            }

            found[name] = new Location(location.Offset + 4, length);
        }

        return found;
    }

    /// <summary>Opens a read-only stream over one resource's bytes.</summary>
    public static Stream Open(string assemblyPath, Location location) =>
        new FileWindowStream(new FileStream(assemblyPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16), location.Offset, location.Length);

    /// <summary>A read-only, seekable view of a range of a file.</summary>
    private sealed class FileWindowStream(FileStream file, long start, long length) : Stream
    {
        private long position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => position;
            set => position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            long remaining = length - position;
            if (remaining <= 0)
            {
                return 0;
            }

            var window = buffer[..(int)Math.Min(buffer.Length, remaining)];
            file.Position = start + position;
            int read = file.Read(window);
            position += read;
            return read;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => position + offset,
            _ => length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                file.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
