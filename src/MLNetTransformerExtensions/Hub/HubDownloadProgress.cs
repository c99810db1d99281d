namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// One step of fetching a file: reported when the file starts, as bytes arrive, and when it is in place
/// (<see cref="IsCompleted"/>). A file already in the cache is reported once, completed, with <see cref="FromCache"/> set.
/// </summary>
/// <param name="RepoId">The repository (<c>owner/name</c>).</param>
/// <param name="FileName">The file's path inside the repository, e.g. <c>model.safetensors</c>.</param>
/// <param name="BytesTransferred">Bytes of the file on disk so far, counting those a resumed download already had.</param>
/// <param name="TotalBytes">The file's full size, when the hub announced it.</param>
/// <param name="IsCompleted">True once the file is verified and in the snapshot folder.</param>
/// <param name="FromCache">True when nothing was transferred because the cache already held the file.</param>
public readonly record struct HubDownloadProgress(
    string RepoId,
    string FileName,
    long BytesTransferred,
    long? TotalBytes,
    bool IsCompleted,
    bool FromCache);
