using MLNetTransformerExtensions.MLNet.Internal;

namespace MLNetTransformerExtensions.Tests.MLNet;

[TestClass]
public sealed class LoaderAssemblyResolutionTests
{
    [TestMethod]
    public void ANameRequestForThisLibraryGetsTheLoadedAssemblyWhateverTheVersion()
    {
        var library = typeof(LoaderAssemblyResolution).Assembly;
        Assert.AreSame(library, LoaderAssemblyResolution.Resolve(null, new ResolveEventArgs("MLNetTransformerExtensions, Version=0.1.0.0, Culture=neutral, PublicKeyToken=null")));
        Assert.AreSame(library, LoaderAssemblyResolution.Resolve(null, new ResolveEventArgs("MLNetTransformerExtensions, Version=9.9.9.9")));
        Assert.IsNull(LoaderAssemblyResolution.Resolve(null, new ResolveEventArgs("MLNetTransformerExtensions.Other, Version=0.1.0.0")));
        Assert.IsNull(LoaderAssemblyResolution.Resolve(null, new ResolveEventArgs("Microsoft.ML.Data")));
    }
}
