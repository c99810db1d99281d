using MLNetTransformerExtensions.Hub;

namespace MLNetTransformerExtensions.Tests.Hub;

[TestClass]
public sealed class HubFailureTests : HubTestContext
{
    [TestMethod]
    public async Task OfflineModeServesTheCacheWithoutAnyRequest()
    {
        using var hub = StartHub();
        var snapshot = await DownloadAsync(Options(hub));
        var before = hub.Requests.Count;

        Assert.AreEqual(snapshot, await DownloadAsync(Options(hub, offline: true)));
        Assert.AreEqual(before, hub.Requests.Count);
    }

    [TestMethod]
    public async Task OfflineModeWithoutACachedCopyFailsNamingTheRepositoryAndTheWayOut()
    {
        using var hub = StartHub();

        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub, offline: true), "tiny/bert@v1"));

        Assert.AreEqual(HubErrorKind.NotCachedOffline, error.Kind);
        Assert.Contains("'tiny/bert@v1'", error.Message);
        Assert.Contains("HF_HUB_OFFLINE", error.Message);
        Assert.IsEmpty(hub.Requests);
    }

    [TestMethod]
    public async Task ACacheLaidOutByPythonIsReadWithoutNetwork()
    {
        WritePythonStyleCache();

        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(null, offline: true)));
        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(null)), "with the hub unreachable the cached snapshot serves");
        AssertSnapshotMatches(SnapshotFolder, FixtureFolder, CheckpointFiles);

        using var hub = StartHub();
        hub.ApiEnabled = false;
        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(hub)));
        Assert.AreEqual(0, hub.ContentTransfers, "online, Python's blobs are used as they are");
        Assert.IsFalse(hub.Requests.Any(r => r.Path.EndsWith("tokenizer.json", StringComparison.Ordinal)), "Python's .no_exist marker is honoured");
    }

    [TestMethod]
    public async Task AnUnreachableHubWithNothingCachedIsNamed()
    {
        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(null)));

        Assert.AreEqual(HubErrorKind.HubUnreachable, error.Kind);
        Assert.Contains("Could not reach http://127.0.0.1:9", error.Message);
        Assert.Contains("'tiny/bert'", error.Message);
        Assert.Contains("Nothing usable is cached", error.Message);
    }

    [TestMethod]
    public async Task MissingRepositoryAndRevisionAreNamed()
    {
        using var hub = StartHub();

        var repo = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub), "tiny/nothing-here"));
        Assert.AreEqual(HubErrorKind.RepositoryNotFound, repo.Kind);
        Assert.Contains("Repository 'tiny/nothing-here' was not found", repo.Message);
        Assert.Contains("HF_TOKEN", repo.Message, "a hidden private repository looks missing: the message says what to try");

        var revision = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub), "tiny/bert@no-such-branch"));
        Assert.AreEqual(HubErrorKind.RevisionNotFound, revision.Kind);
        Assert.Contains("Revision 'no-such-branch' was not found in repository 'tiny/bert'", revision.Message);

        hub.ApiEnabled = false;
        var probed = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub), "tiny/bert@no-such-branch"));
        Assert.AreEqual(HubErrorKind.RevisionNotFound, probed.Kind, "the resolve endpoint's error code is read too");
    }

    [TestMethod]
    public async Task A401IsNamedWithWhatToDo()
    {
        using var hub = StartHub();

        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub), HubStandIn.PrivateRepoId));

        Assert.AreEqual(HubErrorKind.AuthenticationRequired, error.Kind);
        Assert.Contains("'tiny/private'", error.Message);
        Assert.Contains("401", error.Message);
        Assert.Contains("set HF_TOKEN", error.Message);

        var refused = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub, token: "hf_wrong"), HubStandIn.PrivateRepoId));
        Assert.Contains("was not accepted", refused.Message);
    }

    [TestMethod]
    public async Task ACutTransferLeavesNoTrustedFileAndTheNextRunResumesIt()
    {
        using var hub = StartHub();
        hub.CutLfsTransfers = true;

        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub)));

        Assert.AreEqual(HubErrorKind.TransferInterrupted, error.Kind);
        Assert.AreEqual("model.safetensors", error.FileName);
        Assert.Contains("run again to resume", error.Message);
        var etag = EtagOf("model.safetensors", hub.Files["model.safetensors"]);
        var blob = Path.Combine(RepoFolder, "blobs", etag);
        Assert.IsFalse(File.Exists(blob), "no truncated blob");
        Assert.IsFalse(File.Exists(Path.Combine(SnapshotFolder, "model.safetensors")), "no truncated snapshot entry");
        Assert.IsFalse(File.Exists(Path.Combine(RepoFolder, "refs", "main")), "the ref waits for a complete snapshot");
        var partial = new FileInfo(blob + ".incomplete").Length;
        Assert.IsTrue(partial > 0 && partial < hub.Files["model.safetensors"].Length);
        await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(null, offline: true)), "a half download is not a cached checkpoint");

        hub.CutLfsTransfers = false;
        var snapshot = await DownloadAsync(Options(hub));

        AssertSnapshotMatches(snapshot, FixtureFolder, CheckpointFiles);
        Assert.AreEqual($"bytes={partial}-", hub.Requests.Last(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal)).Range, "the second run resumed");
        Assert.IsFalse(File.Exists(blob + ".incomplete"));
    }

    [TestMethod]
    public async Task AfterACutTransferAServerWithoutRangeSupportMakesTheNextRunRestartCleanly()
    {
        using var hub = StartHub();
        hub.CutLfsTransfers = true;
        await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub)));

        hub.CutLfsTransfers = false;
        hub.IgnoreRanges = true;
        var snapshot = await DownloadAsync(Options(hub));

        AssertSnapshotMatches(snapshot, FixtureFolder, CheckpointFiles);
        var last = hub.Requests.Last(r => r.Path.StartsWith("/cdn/", StringComparison.Ordinal));
        Assert.AreEqual(200, last.Status, "the range was asked for, the whole file came back, and replaced the partial one");
        Assert.IsNotNull(last.Range);
    }

    [TestMethod]
    public async Task AWrongSha256IsRejectedAndNothingIsKept()
    {
        using var hub = StartHub();
        hub.CorruptLfsContent = true;

        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub)));

        Assert.AreEqual(HubErrorKind.IntegrityCheckFailed, error.Kind);
        Assert.Contains("SHA-256", error.Message);
        Assert.Contains("'tiny/bert'", error.Message);
        var blob = Path.Combine(RepoFolder, "blobs", EtagOf("model.safetensors", hub.Files["model.safetensors"]));
        Assert.IsFalse(File.Exists(blob));
        Assert.IsFalse(File.Exists(blob + ".incomplete"), "a corrupt download is not resumed");
        Assert.IsFalse(File.Exists(Path.Combine(SnapshotFolder, "model.safetensors")));

        hub.CorruptLfsContent = false;
        AssertSnapshotMatches(await DownloadAsync(Options(hub)), FixtureFolder, CheckpointFiles);
    }

    [TestMethod]
    public async Task WhenTheHubCannotBeReachedTheCachedSnapshotOfTheRevisionServes()
    {
        using (var hub = StartHub())
        {
            await DownloadAsync(Options(hub), "tiny/bert@v1");
        }

        Assert.AreEqual(SnapshotFolder, await DownloadAsync(Options(null), "tiny/bert@v1"));
        var other = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(null), "tiny/bert@v2"));
        Assert.AreEqual(HubErrorKind.HubUnreachable, other.Kind, "another revision is not silently replaced by a cached one");
    }

    [TestMethod]
    public async Task AMalformedIdIsRejectedBeforeAnyRequest()
    {
        using var hub = StartHub();

        var error = await Assert.ThrowsExactlyAsync<HubException>(() => DownloadAsync(Options(hub), "owner/na me"));

        Assert.AreEqual(HubErrorKind.InvalidModelId, error.Kind);
        Assert.Contains("owner/name", error.Message);
        Assert.IsEmpty(hub.Requests);
    }
}
