namespace MLNetTransformerExtensions.Tests.Packaging;

/// <summary>Packs the library and proves the native fix reaches an application that references the package.</summary>
[TestClass]
public sealed class PackageConsumerTests
{
    [TestMethod]
    [TestCategory("Slow")]
    [Timeout(900_000, CooperativeCancellation = true)]
    public void ConsoleAppReferencingThePackedPackageRunsTorch()
    {
        var package = Path.Combine(PackagedApp.Feed, $"MLNetTransformerExtensions.{PackagedApp.Version}.nupkg");
        Assert.IsTrue(File.Exists(package), "dotnet pack wrote no package");
        using (var zip = System.IO.Compression.ZipFile.OpenRead(package))
        {
            var names = zip.Entries.Select(e => e.FullName).ToList();
            CollectionAssert.Contains(names, "README.md");
            CollectionAssert.Contains(names, "NOTICE");
            CollectionAssert.Contains(names, "lib/net10.0/MLNetTransformerExtensions.dll");
            CollectionAssert.Contains(names, "lib/net10.0/MLNetTransformerExtensions.xml");
            CollectionAssert.Contains(names, "buildTransitive/MLNetTransformerExtensions.targets");
        }

        using var app = PackagedApp.Build("""
            using MLNetTransformerExtensions.Runtime;
            var status = TorchRuntime.EnsureInitialized();
            var check = RuntimeCheck.Run();
            using var x = TorchSharp.torch.ones(2, 3);
            Console.WriteLine($"fix={status.Fix} sum={x.sum().item<float>()} grad={check.GradientNorm > 0}");
            """);
        var run = app.Run();
        Assert.AreEqual(0, run.ExitCode, run.StdOut + run.StdErr);
        StringAssert.Contains(run.StdOut, "sum=6 grad=True");
        if (OperatingSystem.IsLinux())
        {
            StringAssert.Matches(run.StdOut, new System.Text.RegularExpressions.Regex("fix=(Applied|NotNeeded)"));
        }
    }
}
