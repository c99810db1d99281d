using System.Text;
using MLNetTransformerExtensions.Hub;

namespace MLNetTransformerExtensions.Tests.Hub;

[TestClass]
public sealed class HubClientTests : HubTestContext
{
    [TestMethod]
    public async Task FirstRunDownloadsTheFixtureBytesInPythonsCacheLayout()
    {
        using var hub = StartHub();

        var snapshot = await DownloadAsync(Options(hub));

        Assert.AreEqual(SnapshotFolder, snapshot);
        AssertSnapshotMatches(snapshot, FixtureFolder, CheckpointFiles);
        foreach (var file in CheckpointFiles)
        {
            // Each snapshot entry is a relative link to the blob named by the hub's ETag, as Python writes it.
            var etag = EtagOf(file, hub.Files[file]);
            Assert.AreEqual($"../../blobs/{etag}", new FileInfo(Path.Combine(snapshot, file)).LinkTarget, file);
            Assert.IsTrue(File.Exists(Path.Combine(RepoFolder, "blobs", etag)), file);
        }

        Assert.AreEqual(HubStandIn.Commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")), "refs/main holds the bare commit");
        Assert.AreEqual(0, Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete").Length);
        Assert.AreEqual(CheckpointFiles.Length, hub.ContentTransfers);
        Assert.IsFalse(hub.Requests.Any(r => r.Path.EndsWith("expected.json", StringComparison.Ordinal)), "files a checkpoint does not need are not fetched");
    }

    [TestMethod]
    public async Task SecondRunMakesNoTransferAndReportsEveryFileFromTheCache()
    {
        using var hub = StartHub();
        var first = await DownloadAsync(Options(hub));
        var requestsAfterFirst = hub.Requests.Count;
        var progress = new ProgressLog();

        var second = await DownloadAsync(Options(hub), progress: progress);

        Assert.AreEqual(first, second);
        Assert.AreEqual(CheckpointFiles.Length, hub.ContentTransfers, "no file content was sent again");
        var secondRun = hub.Requests.Skip(requestsAfterFirst).ToList();
        Assert.HasCount(1, secondRun, "only the revision's commit is asked for");
        StringAssert.StartsWith(secondRun[0].Path, "/api/models/tiny/bert/revision/main");
        CollectionAssert.AreEquivalent(CheckpointFiles, progress.Events.Select(e => e.FileName).ToArray());
        Assert.IsTrue(progress.Events.All(e => e.FromCache && e.IsCompleted));
    }

    [TestMethod]
    public async Task WithoutTheModelApiFilesAreProbedAndAbsentOnesRemembered()
    {
        using var hub = StartHub();
        hub.ApiEnabled = false;

        var snapshot = await DownloadAsync(Options(hub));

        AssertSnapshotMatches(snapshot, FixtureFolder, CheckpointFiles);
        var noExist = Path.Combine(RepoFolder, ".no_exist", HubStandIn.Commit);
        Assert.IsTrue(File.Exists(Path.Combine(noExist, "tokenizer.json")), "a 404 is cached like Python caches it");
        Assert.IsFalse(hub.Requests.Any(r => r.Path.EndsWith("pytorch_model.bin", StringComparison.Ordinal)), "safetensors found: .bin is not even asked for");
        Assert.IsTrue(hub.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)).Skip(1).All(r => r.Path.Contains(HubStandIn.Commit, StringComparison.Ordinal)),
            "after the first answer every file is asked for at the commit, not the branch");

        var before = hub.Requests.Count;
        Assert.AreEqual(snapshot, await DownloadAsync(Options(hub)));
        var secondRun = hub.Requests.Skip(before).Where(r => !r.Path.StartsWith("/api/", StringComparison.Ordinal)).ToList();
        Assert.HasCount(1, secondRun, "one HEAD names the commit; cached and known-absent files need no request");
        Assert.AreEqual("HEAD /tiny/bert/resolve/main/config.json", $"{secondRun[0].Method} {secondRun[0].Path}");
    }

    [TestMethod]
    public async Task SafetensorsArePreferredOverPytorchBinWhichIsTheFallback()
    {
        var both = MakeRepoFolder("both", ("model.safetensors", 300), ("pytorch_model.bin", 200));
        using (var hub = StartHub(both))
        {
            var snapshot = await DownloadAsync(Options(hub));
            AssertSnapshotMatches(snapshot, both, "config.json", "model.safetensors");
        }

        Directory.Delete(Cache, recursive: true);
        var binOnly = MakeRepoFolder("bin-only", ("pytorch_model.bin", 200), ("vocab.json", 10), ("merges.txt", 10));
        using (var hub = StartHub(binOnly))
        {
            hub.ApiEnabled = false;
            var snapshot = await DownloadAsync(Options(hub));
            AssertSnapshotMatches(snapshot, binOnly, "config.json", "pytorch_model.bin", "vocab.json", "merges.txt");
        }
    }

    [TestMethod]
    public async Task ShardedWeightsBringTheirIndexAndEveryShard()
    {
        var folder = MakeRepoFolder("sharded", ("model-00001-of-00002.safetensors", 500), ("model-00002-of-00002.safetensors", 400));
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
            """{"metadata":{"total_size":900},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors","c.weight":"model-00001-of-00002.safetensors"}}""");
        using var hub = StartHub(folder);

        var snapshot = await DownloadAsync(Options(hub));

        AssertSnapshotMatches(snapshot, folder, "config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");

        // Offline, the cached snapshot counts as complete only with every shard present.
        Assert.AreEqual(snapshot, await DownloadAsync(Options(null, offline: true)));
        File.Delete(Path.Combine(snapshot, "model-00002-of-00002.safetensors"));
        await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(null, offline: true)));
    }

    [TestMethod]
    public async Task AShardTheIndexNamesButTheRepositoryLacksIsNamed()
    {
        var folder = MakeRepoFolder("broken", ("model-00001-of-00002.safetensors", 500));
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
            """{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        using var hub = StartHub(folder);

        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub)));

        Assert.AreEqual(HubErrorKind.IncompleteCheckpoint, error.Kind);
        Assert.AreEqual("model-00002-of-00002.safetensors", error.FileName);
        Assert.Contains("tiny/bert", error.Message);
    }

    [TestMethod]
    public async Task ATagIsRecordedUnderRefsAndACommitNeedsNoRef()
    {
        using var hub = StartHub();

        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(hub), $"{HubStandIn.RepoId}@v1"));
        Assert.AreEqual(HubStandIn.Commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "v1")));
        Assert.IsFalse(File.Exists(Path.Combine(RepoFolder, "refs", "main")));

        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(null, offline: true), $"{HubStandIn.RepoId}@{HubStandIn.Commit}"));
        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(null, offline: true), $"{HubStandIn.RepoId}@v1"));
        Assert.HasCount(1, Directory.GetFiles(Path.Combine(RepoFolder, "refs")));
    }

    [TestMethod]
    public async Task APrivateRepositoryIsFetchedWithTheTokenAsBearer()
    {
        using var hub = StartHub();

        var snapshot = await DownloadAsync(Options(hub, token: HubStandIn.Token), HubStandIn.PrivateRepoId);

        AssertSnapshotMatches(snapshot, FixtureFolder, CheckpointFiles);
        Assert.IsTrue(hub.Requests.Where(r => !r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).All(r => r.HadAuthorization));
    }

    [TestMethod]
    public async Task ARenamedRepositoryIsFollowedThroughItsRelativeRedirect()
    {
        using var hub = StartHub();
        hub.ApiEnabled = false;

        var snapshot = await DownloadAsync(Options(hub), HubStandIn.RenamedRepoId);

        Assert.AreEqual(Path.Combine(Cache, "models--tiny--old-bert", "snapshots", HubStandIn.Commit), snapshot, "cached under the name asked for, as Python does");
        AssertSnapshotMatches(snapshot, FixtureFolder, CheckpointFiles);
    }

    [TestMethod]
    public async Task ProgressIsReportedPerFileFromZeroToItsSize()
    {
        using var hub = StartHub();
        var progress = new ProgressLog();

        await DownloadAsync(Options(hub), progress: progress);

        foreach (var file in CheckpointFiles)
        {
            var events = progress.Events.Where(e => e.FileName == file).ToList();
            var size = hub.Files[file].Length;
            Assert.AreEqual(0, events[0].BytesTransferred, file);
            Assert.AreEqual(new HubDownloadProgress(HubStandIn.RepoId, file, size, size, true, false), events[^1], file);
            Assert.IsTrue(events.All(e => e.TotalBytes == size), file);
        }
    }

    [TestMethod]
    public async Task TwoClientsDownloadingTheSameFilesShareOneTransferAndCorruptNothing()
    {
        using var hub = StartHub();

        var results = await Task.WhenAll(DownloadAsync(Options(hub)), DownloadAsync(Options(hub)));

        Assert.AreEqual(results[0], results[1]);
        AssertSnapshotMatches(results[0], FixtureFolder, CheckpointFiles);
        Assert.AreEqual(1, hub.Requests.Count(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)), "the weights were sent once");
        Assert.AreEqual(0, Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete").Length);
    }

    [TestMethod]
    public async Task ADownloadWaitsWhileAnotherProcessHoldsTheBlobLock()
    {
        using var hub = StartHub();
        var etag = EtagOf("model.safetensors", hub.Files["model.safetensors"]);
        var lockPath = Path.Combine(Cache, ".locks", "models--tiny--bert", etag + ".lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);

        Task<string> download;
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            download = DownloadAsync(Options(hub));
            await Task.Delay(400);
            Assert.IsFalse(download.IsCompleted, "the download waits for the lock");
            Assert.IsFalse(hub.Requests.Any(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)));
        }

        AssertSnapshotMatches(await download, FixtureFolder, CheckpointFiles);
    }

    [TestMethod]
    public async Task DownloadFileFetchesOneFileAndNamesAMissingOne()
    {
        using var hub = StartHub();
        using var client = new HubClient(Options(hub));

        var path = await client.DownloadFileAsync(HubStandIn.RepoId, "vocab.txt");

        Assert.AreEqual(Path.Combine(SnapshotFolder, "vocab.txt"), path);
        CollectionAssert.AreEqual(hub.Files["vocab.txt"], File.ReadAllBytes(path));
        var error = await Assert.ThrowsExactlyAsync<HubException>(() => client.DownloadFileAsync(HubStandIn.RepoId, "tokenizer.json"));
        Assert.AreEqual(HubErrorKind.EntryNotFound, error.Kind);
        Assert.Contains("'tokenizer.json'", error.Message);
        Assert.Contains("'tiny/bert'", error.Message);

        using var offline = new HubClient(Options(null, offline: true));
        Assert.AreEqual(path, await offline.DownloadFileAsync(HubStandIn.RepoId, "vocab.txt"));
    }

    /// <summary>A repository folder with a config and files of the given sizes (deterministic bytes).</summary>
    private string MakeRepoFolder(string name, params (string File, int Size)[] files)
    {
        var folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type":"bert"}""", Encoding.UTF8);
        foreach (var (file, size) in files)
        {
            File.WriteAllBytes(Path.Combine(folder, file), Enumerable.Range(0, size).Select(i => (byte)((i * 31) + file.Length)).ToArray());
        }

        return folder;
    }
}
