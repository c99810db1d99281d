namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>
/// Writes a file so that a reader, a crash or a full disk finds either the complete new file or what was there before
/// (the previous file, or none), never a part: the bytes go to a hidden temporary file in the same folder (so the
/// rename stays on one file system), are flushed to disk, and the temporary file is renamed over the destination. A
/// failed write deletes the temporary file; a killed process can leave only a <c>.*.tmp</c> file beside it.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/>.</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="write">Writes the content to the stream it is given.</param>
    /// <param name="createTemporary">Opens the temporary file by path; tests make it fail part-way.</param>
    public static void Write(string path, Action<Stream> write, Func<string, Stream>? createTemporary = null)
    {
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = createTemporary?.Invoke(temporary) ?? new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(file);
                file.Flush();
                (file as FileStream)?.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> as <paramref name="path"/>.</summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="bytes">Its content.</param>
    /// <param name="createTemporary">Opens the temporary file by path; tests make it fail part-way.</param>
    public static void WriteAllBytes(string path, byte[] bytes, Func<string, Stream>? createTemporary = null) =>
        Write(path, stream => stream.Write(bytes), createTemporary);
}
