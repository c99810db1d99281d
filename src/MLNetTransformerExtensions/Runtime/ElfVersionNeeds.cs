using System.Buffers.Binary;
using System.Text;

namespace MLNetTransformerExtensions.Runtime;

/// <summary>What <see cref="ElfVersionNeeds.Weaken"/> did to a file.</summary>
internal enum ElfWeakenResult
{
    /// <summary>The file does not require that symbol version; nothing was changed.</summary>
    NotRequired,

    /// <summary>The requirement was already weak; nothing was changed.</summary>
    AlreadyWeak,

    /// <summary>The requirement was marked weak (one flag changed in place).</summary>
    Weakened,
}

/// <summary>
/// Reads and edits the symbol-version requirements (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF
/// shared library. Marking a requirement weak (<c>VER_FLG_WEAK</c>) lets the dynamic linker load the
/// library on a system that lacks that version; the file keeps its size and layout.
/// </summary>
/// <remarks>
/// Used for TorchSharp's <c>libLibTorchSharp.so</c>, whose only GLIBCXX_3.4.32 symbol is an unused
/// <c>std::ios_base_library_init()</c> reference (see the README's note on older libstdc++).
/// </remarks>
internal static class ElfVersionNeeds
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>One version requirement: the library that must provide it, the version name, and its flags.</summary>
    /// <param name="Library">The needed library's file name, e.g. <c>libstdc++.so.6</c>.</param>
    /// <param name="Version">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
    /// <param name="IsWeak">Whether a missing version is tolerated by the dynamic linker.</param>
    public readonly record struct Requirement(string Library, string Version, bool IsWeak);

    /// <summary>Lists every symbol-version requirement of an ELF image.</summary>
    /// <param name="image">The whole file's bytes.</param>
    /// <param name="fileName">The file's name, used in error messages.</param>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed 64-bit little-endian ELF file.</exception>
    public static IReadOnlyList<Requirement> Read(ReadOnlySpan<byte> image, string fileName)
    {
        var list = new List<Requirement>();
        Walk(image, fileName, (library, version, flags, _) => list.Add(new Requirement(library, version, (flags & VerFlgWeak) != 0)));
        return list;
    }

    /// <summary>Marks the requirement of <paramref name="version"/> weak, editing <paramref name="image"/> in place.</summary>
    /// <param name="image">The whole file's bytes; changed only when the result is <see cref="ElfWeakenResult.Weakened"/>.</param>
    /// <param name="version">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
    /// <param name="fileName">The file's name, used in error messages.</param>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed 64-bit little-endian ELF file.</exception>
    public static ElfWeakenResult Weaken(Span<byte> image, string version, string fileName)
    {
        var flagOffsets = new List<int>();
        var alreadyWeak = false;
        Walk(image, fileName, (_, name, flags, flagsOffset) =>
        {
            if (name != version)
            {
                return;
            }

            if ((flags & VerFlgWeak) != 0)
            {
                alreadyWeak = true;
            }
            else
            {
                flagOffsets.Add(flagsOffset);
            }
        });

        foreach (var offset in flagOffsets)
        {
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(image[offset..]);
            BinaryPrimitives.WriteUInt16LittleEndian(image[offset..], (ushort)(flags | VerFlgWeak));
        }

        return flagOffsets.Count > 0 ? ElfWeakenResult.Weakened
            : alreadyWeak ? ElfWeakenResult.AlreadyWeak
            : ElfWeakenResult.NotRequired;
    }

    private delegate void AuxVisitor(string library, string version, ushort flags, int flagsOffset);

    private static void Walk(ReadOnlySpan<byte> image, string fileName, AuxVisitor visit)
    {
        if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
        {
            throw Bad(fileName, "it is not an ELF file (no ELF magic number in its first bytes)");
        }

        if (image[4] != 2 || image[5] != 1)
        {
            throw Bad(fileName, "only 64-bit little-endian ELF files are supported");
        }

        var sectionTable = ReadU64(image, 0x28, fileName);
        var entrySize = BinaryPrimitives.ReadUInt16LittleEndian(image[0x3A..]);
        var sectionCount = BinaryPrimitives.ReadUInt16LittleEndian(image[0x3C..]);
        if (entrySize < 64)
        {
            throw Bad(fileName, $"section header size {entrySize} is smaller than 64 bytes");
        }

        Check(image, sectionTable, (ulong)entrySize * sectionCount, fileName, "the section header table");
        for (var i = 0; i < sectionCount; i++)
        {
            var header = (int)sectionTable + i * entrySize;
            if (BinaryPrimitives.ReadUInt32LittleEndian(image[(header + 4)..]) != ShtGnuVerneed)
            {
                continue;
            }

            var offset = ReadU64(image, header + 24, fileName);
            var size = ReadU64(image, header + 32, fileName);
            var link = BinaryPrimitives.ReadUInt32LittleEndian(image[(header + 40)..]);
            var count = BinaryPrimitives.ReadUInt32LittleEndian(image[(header + 44)..]);
            Check(image, offset, size, fileName, ".gnu.version_r");
            if (link >= sectionCount)
            {
                throw Bad(fileName, $".gnu.version_r links to section {link}, but there are {sectionCount}");
            }

            var strings = (int)sectionTable + (int)link * entrySize;
            var stringsOffset = ReadU64(image, strings + 24, fileName);
            var stringsSize = ReadU64(image, strings + 32, fileName);
            Check(image, stringsOffset, stringsSize, fileName, "the version string table");
            var table = image.Slice((int)stringsOffset, (int)stringsSize);

            var need = (long)offset;
            var end = (long)(offset + size);
            for (var n = 0; n < count; n++)
            {
                if (need + 16 > end)
                {
                    throw Bad(fileName, "a version-need record runs past .gnu.version_r");
                }

                var auxCount = BinaryPrimitives.ReadUInt16LittleEndian(image[(int)(need + 2)..]);
                var library = ReadString(table, BinaryPrimitives.ReadUInt32LittleEndian(image[(int)(need + 4)..]), fileName);
                var aux = need + BinaryPrimitives.ReadUInt32LittleEndian(image[(int)(need + 8)..]);
                for (var a = 0; a < auxCount; a++)
                {
                    if (aux < (long)offset || aux + 16 > end)
                    {
                        throw Bad(fileName, "a version-need auxiliary record lies outside .gnu.version_r");
                    }

                    var flags = BinaryPrimitives.ReadUInt16LittleEndian(image[(int)(aux + 4)..]);
                    var name = ReadString(table, BinaryPrimitives.ReadUInt32LittleEndian(image[(int)(aux + 8)..]), fileName);
                    visit(library, name, flags, (int)(aux + 4));
                    aux += BinaryPrimitives.ReadUInt32LittleEndian(image[(int)(aux + 12)..]);
                }

                var next = BinaryPrimitives.ReadUInt32LittleEndian(image[(int)(need + 12)..]);
                if (next == 0)
                {
                    break;
                }

                need += next;
            }
        }
    }

    private static ulong ReadU64(ReadOnlySpan<byte> image, int at, string fileName)
    {
        if (at < 0 || at + 8 > image.Length)
        {
            throw Bad(fileName, "the file is truncated");
        }

        return BinaryPrimitives.ReadUInt64LittleEndian(image[at..]);
    }

    private static void Check(ReadOnlySpan<byte> image, ulong offset, ulong size, string fileName, string what)
    {
        if (offset > (ulong)image.Length || size > (ulong)image.Length - offset)
        {
            throw Bad(fileName, $"{what} lies beyond the end of the file (the file is truncated or damaged)");
        }
    }

    private static string ReadString(ReadOnlySpan<byte> table, uint at, string fileName)
    {
        if (at >= table.Length)
        {
            throw Bad(fileName, "a version name points outside the string table");
        }

        var rest = table[(int)at..];
        var length = rest.IndexOf((byte)0);
        if (length < 0)
        {
            throw Bad(fileName, "a version name is not terminated");
        }

        return Encoding.ASCII.GetString(rest[..length]);
    }

    private static InvalidDataException Bad(string fileName, string why) =>
        new($"Cannot read the symbol versions of '{fileName}': {why}. Reinstall the TorchSharp package (delete it from the NuGet cache and restore again).");
}
