namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// One repository's folder in the cache, laid out exactly as Python's huggingface_hub lays it out, so either can
/// read what the other wrote:
/// <code>
/// {cache}/models--{owner}--{name}/
///     blobs/{etag}                     file contents, named by git SHA-1 (small files) or SHA-256 (LFS files)
///     snapshots/{commit}/{file}        relative symbolic links into blobs (plain files where links are impossible)
///     refs/{revision}                  the commit a branch or tag pointed to, as 40 hex digits without newline
///     .no_exist/{commit}/{file}        empty marker: the file is known to be absent at that commit
/// {cache}/.locks/models--{owner}--{name}/{etag}.lock
/// </code>
/// </summary>
internal sealed class HubRepoCache
{
    internal HubRepoCache(string cacheDirectory, string repoId)
    {
        if (string.IsNullOrWhiteSpace(cacheDirectory))
        {
            throw new ArgumentException("The hub cache folder is empty: set HF_HUB_CACHE or HF_HOME, or HubOptions.CacheDirectory.", nameof(cacheDirectory));
        }

        CacheDirectory = Path.GetFullPath(cacheDirectory);
        FolderName = "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
        RepoFolder = Path.Combine(CacheDirectory, FolderName);
    }

    internal string CacheDirectory { get; }

    internal string FolderName { get; }

    internal string RepoFolder { get; }

    internal string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    internal string PointerPath(string commit, string fileName) => Path.Combine([SnapshotFolder(commit), .. fileName.Split('/')]);

    internal string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    internal string LockPath(string etag) => Path.Combine(CacheDirectory, ".locks", FolderName, etag + ".lock");

    private string RefPath(string revision) => Path.Combine([RepoFolder, "refs", .. revision.Split('/')]);

    private string NoExistPath(string commit, string fileName) => Path.Combine([RepoFolder, ".no_exist", commit, .. fileName.Split('/')]);

    /// <summary>The commit a revision stands for: itself when it is a commit hash, else what <c>refs/</c> recorded.</summary>
    internal string? CommitFor(string revision)
    {
        if (HubReference.IsCommitHash(revision))
        {
            return revision;
        }

        var refPath = RefPath(revision);
        return File.Exists(refPath) && File.ReadAllText(refPath).Trim() is var commit && HubReference.IsCommitHash(commit) ? commit : null;
    }

    /// <summary>Records which commit a branch or tag points to; a commit hash needs no record.</summary>
    internal void WriteRef(string revision, string commit)
    {
        if (revision == commit || CommitFor(revision) == commit)
        {
            return; // unchanged: leave a read-only cache alone
        }

        var refPath = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        File.WriteAllText(refPath, commit);
    }

    internal bool IsKnownMissing(string commit, string fileName) => File.Exists(NoExistPath(commit, fileName));

    internal void MarkMissing(string commit, string fileName)
    {
        var marker = NoExistPath(commit, fileName);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
            using (File.Open(marker, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite))
            {
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The marker only saves a request next time; a read-only cache still works without it.
        }
    }

    /// <summary>
    /// Puts a blob into a snapshot as a relative symbolic link. Where links cannot be made, a new blob is moved
    /// there and an old one copied, as huggingface_hub does, so the snapshot always holds real content.
    /// </summary>
    internal void LinkIntoSnapshot(string blobPath, string pointerPath, bool newBlob)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(pointerPath)!);
        File.Delete(pointerPath); // a dangling link from a deleted blob would block the new one
        try
        {
            File.CreateSymbolicLink(pointerPath, Path.GetRelativePath(Path.GetDirectoryName(pointerPath)!, blobPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            if (File.Exists(pointerPath))
            {
                return; // another process linked it between our delete and create
            }

            if (newBlob)
            {
                File.Move(blobPath, pointerPath);
            }
            else
            {
                File.Copy(blobPath, pointerPath);
            }
        }
    }
}
