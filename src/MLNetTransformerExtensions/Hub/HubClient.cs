using MLNetTransformerExtensions.Checkpoints;

namespace MLNetTransformerExtensions.Hub;

/// <summary>
/// Downloads checkpoints from a HuggingFace Hub into the cache that Python's <c>huggingface_hub</c> uses, in its
/// layout: a cache Python filled is used as it is, and one filled here is usable from Python.
/// </summary>
/// <remarks>
/// <para>
/// A snapshot is resolved the way <c>snapshot_download</c> and <c>hf_hub_download</c> resolve one: the model API
/// names the commit and the files (servers without it are probed file by file), each file's <c>resolve</c>
/// address answers a HEAD with its commit, ETag and size (an LFS file on the redirect to its CDN, in
/// <c>X-Linked-Etag</c> and <c>X-Linked-Size</c>), and content is stored once per ETag under <c>blobs/</c>, linked
/// from <c>snapshots/{commit}/</c>. Files the hub reports absent are remembered under <c>.no_exist/</c>.
/// </para>
/// <para>
/// Downloads go to a <c>.incomplete</c> file beside the blob under a lock in <c>.locks/</c>, and are renamed into
/// place only once complete and, for LFS files, matching their SHA-256: an interrupted run never leaves a file
/// that a later run would trust, and the later run resumes it. When the hub cannot be reached (or refuses
/// access) a complete cached snapshot of the same revision is used instead.
/// </para>
/// </remarks>
public sealed class HubClient : IDisposable
{
    private readonly HubOptions options;
    private readonly Lazy<HubHttp> http;

    /// <summary>Creates a client.</summary>
    /// <param name="options">Endpoint, cache, offline mode and token; null reads them all from the environment (see <see cref="HubOptions"/>).</param>
    public HubClient(HubOptions? options = null)
    {
        this.options = options ?? new HubOptions();
        http = new Lazy<HubHttp>(() => new HubHttp(this.options));
    }

    /// <summary>
    /// Makes sure the cache holds the files a checkpoint needs and returns the snapshot folder that holds them:
    /// <c>config.json</c>; the weights (<c>model.safetensors</c> preferred over <c>pytorch_model.bin</c>, or a sharded
    /// index with all its shards); and whichever tokenizer files exist (<c>tokenizer.json</c>,
    /// <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>, <c>vocab.txt</c>, <c>vocab.json</c>,
    /// <c>merges.txt</c>, <c>added_tokens.json</c>).
    /// </summary>
    /// <param name="repoIdWithOptionalRevision"><c>name</c> or <c>owner/name</c>, optionally followed by <c>@revision</c> (a branch, tag or commit; <c>main</c> when absent).</param>
    /// <param name="progress">Receives one event as each file starts, as its bytes arrive, and when it is in place.</param>
    /// <param name="cancellationToken">Stops the download; a partial file is kept aside and resumed by the next run.</param>
    /// <returns>The full path of <c>{cache}/models--{owner}--{name}/snapshots/{commit}</c>.</returns>
    /// <exception cref="HubException">The id is malformed, the repository, revision or a needed file is missing, access is denied, the download failed, or offline mode is on without a cached copy; the message says which and what to do.</exception>
    public async Task<string> DownloadSnapshotAsync(
        string repoIdWithOptionalRevision, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var reference = HubReference.Parse(repoIdWithOptionalRevision);
        var cache = new HubRepoCache(options.CacheDirectory, reference.RepoId);
        if (options.Offline)
        {
            return CachedSnapshot(cache, reference) ?? throw NotCachedOffline(cache, reference, null);
        }

        try
        {
            return await DownloadCheckpointAsync(reference, cache, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (HubException e) when (CanFallBackToCache(e))
        {
            return CachedSnapshot(cache, reference) ?? throw NothingCached(e, cache, reference);
        }
    }

    /// <summary>Makes sure the cache holds one file of a repository and returns its path inside the snapshot folder.</summary>
    /// <param name="repoIdWithOptionalRevision"><c>name</c> or <c>owner/name</c>, optionally followed by <c>@revision</c>.</param>
    /// <param name="fileName">The file's path inside the repository, with <c>/</c> between folders.</param>
    /// <param name="progress">Receives the file's progress events.</param>
    /// <param name="cancellationToken">Stops the download; a partial file is kept aside and resumed by the next run.</param>
    /// <returns>The full path of <c>{cache}/models--{owner}--{name}/snapshots/{commit}/{fileName}</c>.</returns>
    /// <exception cref="HubException">As for <see cref="DownloadSnapshotAsync"/>, and <see cref="HubErrorKind.EntryNotFound"/> when the repository has no such file.</exception>
    public async Task<string> DownloadFileAsync(
        string repoIdWithOptionalRevision, string fileName, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var reference = HubReference.Parse(repoIdWithOptionalRevision);
        if (string.IsNullOrWhiteSpace(fileName) || fileName.StartsWith('/') || fileName.Split('/').Any(segment => segment is "" or "." or ".."))
        {
            throw new ArgumentException($"'{fileName}' is not a file path inside a repository (e.g. config.json or onnx/model.onnx).", nameof(fileName));
        }

        var cache = new HubRepoCache(options.CacheDirectory, reference.RepoId);
        if (options.Offline)
        {
            return CachedFile(cache, reference, fileName) ?? throw NotCachedOffline(cache, reference, fileName);
        }

        try
        {
            var knownCommit = reference.RevisionIsCommit ? reference.Revision : null;
            var (path, commit) = await FetchAsync(reference, cache, knownCommit, fileName, progress, cancellationToken).ConfigureAwait(false);
            if (path is null)
            {
                throw new HubException(
                    HubErrorKind.EntryNotFound, reference.RepoId, reference.Revision, fileName,
                    $"File '{fileName}' was not found in repository '{reference.RepoId}' at revision '{reference.Revision}' on {http.Value.Endpoint}.");
            }

            cache.WriteRef(reference.Revision, commit!);
            return path;
        }
        catch (HubException e) when (CanFallBackToCache(e))
        {
            return CachedFile(cache, reference, fileName) ?? throw NothingCached(e, cache, reference);
        }
    }

    /// <summary>Releases the HTTP connections.</summary>
    public void Dispose()
    {
        if (http.IsValueCreated)
        {
            http.Value.Dispose();
        }
    }

    private async Task<string> DownloadCheckpointAsync(
        HubReference reference, HubRepoCache cache, IProgress<HubDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var listing = await http.Value.GetRepoListingAsync(reference, cancellationToken).ConfigureAwait(false);

        // Without the API's list, the first HEAD names the commit; every later file is asked for at that commit,
        // so a branch that moves meanwhile cannot mix two versions in one snapshot.
        var commit = listing?.Commit ?? (reference.RevisionIsCommit ? reference.Revision : null);
        bool Listed(string fileName) => listing is null || listing.Files.Contains(fileName);

        async Task<string?> FetchIfPresent(string fileName)
        {
            if (!Listed(fileName))
            {
                return null;
            }

            (var path, commit) = await FetchAsync(reference, cache, commit, fileName, progress, cancellationToken).ConfigureAwait(false);
            return path;
        }

        if (await FetchIfPresent(CheckpointFiles.ConfigName).ConfigureAwait(false) is null)
        {
            throw Incomplete(reference, CheckpointFiles.ConfigName,
                $"Repository '{reference.RepoId}' has no {CheckpointFiles.ConfigName} at revision '{reference.Revision}' on {http.Value.Endpoint}: it is not a transformers checkpoint, or the repository does not exist there. Check the id and the revision.");
        }

        var hasWeights = false;
        foreach (var weights in CheckpointFiles.WeightNames)
        {
            if (await FetchIfPresent(weights).ConfigureAwait(false) is not { } weightsPath)
            {
                continue;
            }

            if (CheckpointFiles.IsIndex(weights))
            {
                foreach (var shard in HubSnapshotFiles.ShardsOf(weightsPath, reference.RepoId, weights))
                {
                    if (await FetchIfPresent(shard).ConfigureAwait(false) is null)
                    {
                        throw Incomplete(reference, shard,
                            $"The weight index '{weights}' of repository '{reference.RepoId}' at revision '{reference.Revision}' names the shard '{shard}', which the repository lacks. The repository is broken: ask its owner, or pick another revision.");
                    }
                }
            }

            hasWeights = true;
            break;
        }

        if (!hasWeights)
        {
            throw Incomplete(reference, null,
                $"Repository '{reference.RepoId}' has no weights at revision '{reference.Revision}': none of {string.Join(", ", CheckpointFiles.WeightNames)}. Checkpoints saved only for other frameworks (TensorFlow, Flax, ONNX) cannot be loaded; pick a repository with PyTorch or safetensors weights.");
        }

        foreach (var tokenizerFile in CheckpointFiles.TokenizerNames)
        {
            await FetchIfPresent(tokenizerFile).ConfigureAwait(false);
        }

        cache.WriteRef(reference.Revision, commit!);
        return cache.SnapshotFolder(commit!);
    }

    /// <summary>
    /// Fetches one file into the snapshot of <paramref name="knownCommit"/> (or of whatever commit the hub names
    /// for the revision), as <c>hf_hub_download</c> does. Returns a null path when the hub says the file is absent.
    /// </summary>
    private async Task<(string? Path, string? Commit)> FetchAsync(
        HubReference reference,
        HubRepoCache cache,
        string? knownCommit,
        string fileName,
        IProgress<HubDownloadProgress>? progress,
        CancellationToken cancellationToken)
    {
        if (knownCommit is not null)
        {
            // A commit's files never change: what the cache holds (or knows to be absent) needs no request.
            if (CachedPointer(cache, knownCommit, fileName, progress, reference.RepoId) is { } cached)
            {
                return (cached, knownCommit);
            }

            if (cache.IsKnownMissing(knownCommit, fileName))
            {
                return (null, knownCommit);
            }
        }

        var asked = knownCommit is null ? reference : reference with { Revision = knownCommit };
        var (metadata, missingAt) = await http.Value.GetFileMetadataAsync(asked, fileName, cancellationToken).ConfigureAwait(false);
        if (metadata is null)
        {
            var commitChecked = missingAt ?? knownCommit;
            if (commitChecked is not null)
            {
                cache.MarkMissing(commitChecked, fileName);
            }

            return (null, commitChecked);
        }

        var commit = knownCommit ?? metadata.Commit;
        if (CachedPointer(cache, commit, fileName, progress, reference.RepoId) is { } pointer)
        {
            return (pointer, commit);
        }

        pointer = cache.PointerPath(commit, fileName);
        var blob = cache.BlobPath(metadata.Etag);
        var newBlob = false;
        using (await HubFileLock.AcquireAsync(cache.LockPath(metadata.Etag), cancellationToken).ConfigureAwait(false))
        {
            // Checked again under the lock: another process may have just finished this blob.
            if (!File.Exists(blob))
            {
                await HubBlobDownload.DownloadAsync(http.Value, asked, fileName, metadata, blob, progress, cancellationToken).ConfigureAwait(false);
                newBlob = true;
            }

            if (!File.Exists(pointer))
            {
                cache.LinkIntoSnapshot(blob, pointer, newBlob);
            }
        }

        progress?.Report(new HubDownloadProgress(reference.RepoId, fileName, metadata.Size, metadata.Size, IsCompleted: true, FromCache: !newBlob));
        return (pointer, commit);
    }

    private static string? CachedPointer(HubRepoCache cache, string commit, string fileName, IProgress<HubDownloadProgress>? progress, string repoId)
    {
        var pointer = cache.PointerPath(commit, fileName);
        if (!File.Exists(pointer))
        {
            return null;
        }

        var size = new FileInfo(File.ResolveLinkTarget(pointer, returnFinalTarget: true)?.FullName ?? pointer).Length;
        progress?.Report(new HubDownloadProgress(repoId, fileName, size, size, IsCompleted: true, FromCache: true));
        return pointer;
    }

    private static string? CachedSnapshot(HubRepoCache cache, HubReference reference) =>
        cache.CommitFor(reference.Revision) is { } commit
        && cache.SnapshotFolder(commit) is var folder
        && Directory.Exists(folder)
        && HubSnapshotFiles.IsComplete(folder, reference.RepoId)
            ? folder
            : null;

    private static string? CachedFile(HubRepoCache cache, HubReference reference, string fileName) =>
        cache.CommitFor(reference.Revision) is { } commit && cache.PointerPath(commit, fileName) is var pointer && File.Exists(pointer)
            ? pointer
            : null;

    // As huggingface_hub does: when the hub cannot be asked (network, server error, refused or hidden repository),
    // a cached copy of the same revision still serves; a missing revision or file is a definite answer.
    private static bool CanFallBackToCache(HubException e) => e.Kind
        is HubErrorKind.HubUnreachable
        or HubErrorKind.UnexpectedResponse
        or HubErrorKind.AuthenticationRequired
        or HubErrorKind.RepositoryNotFound;

    private static HubException NotCachedOffline(HubRepoCache cache, HubReference reference, string? fileName) => new(
        HubErrorKind.NotCachedOffline, reference.RepoId, reference.Revision, fileName,
        $"Offline mode is on (HF_HUB_OFFLINE or HubOptions.Offline) and the cache {cache.CacheDirectory} holds no "
        + (fileName is null ? "complete checkpoint" : $"'{fileName}'") + $" of '{reference}'. "
        + "Run once with network access to download it (unset HF_HUB_OFFLINE), point HF_HUB_CACHE at a cache that has it, or pass a local folder.");

    private static HubException NothingCached(HubException e, HubRepoCache cache, HubReference reference) => new(
        e.Kind, e.RepoId, e.Revision, e.FileName,
        $"{e.Message} Nothing usable is cached for '{reference}' in {cache.CacheDirectory} either.",
        e);

    private static HubException Incomplete(HubReference reference, string? fileName, string message) =>
        new(HubErrorKind.IncompleteCheckpoint, reference.RepoId, reference.Revision, fileName, message);
}
