using System.Reflection;
using System.Xml.Linq;
using Microsoft.ML;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// The tests run against the Microsoft.ML they were asked to: the lowest version of the library's range by default, or
/// the one given with <c>-p:MLNetTestVersion=...</c> (CI's second pass, with the newest served version). Without this
/// check a pass that silently restored the default would look like a pass against the newer version.
/// </summary>
[TestClass]
public sealed class MLNetVersionTests
{
    [TestMethod]
    public void TheLoadedMicrosoftMLIsTheVersionThisRunAskedFor()
    {
        var requested = typeof(MLNetVersionTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "MLNetTestVersion")?.Value;
        var expected = string.IsNullOrEmpty(requested) ? LowestSupportedVersion() : requested;

        foreach (var assembly in new[] { typeof(MLContext).Assembly, typeof(Microsoft.ML.Runtime.IHostEnvironment).Assembly, typeof(IDataView).Assembly })
        {
            var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
            Assert.AreEqual(expected, version, $"{assembly.GetName().Name} loaded from {assembly.Location}");
        }
    }

    /// <summary>The lower bound of Microsoft.ML's range in Directory.Packages.props, such as 5.0.1 in [5.0.1, 7.0.0).</summary>
    private static string LowestSupportedVersion()
    {
        var range = XDocument.Load(Path.Combine(TestPaths.RepositoryRoot(), "Directory.Packages.props")).Descendants("PackageVersion")
            .Single(p => (string?)p.Attribute("Include") == "Microsoft.ML").Attribute("Version")!.Value;
        StringAssert.StartsWith(range, "[", "Microsoft.ML's version in Directory.Packages.props must be a range that includes its lowest version");
        return range.TrimStart('[').Split(',')[0].Trim();
    }
}
