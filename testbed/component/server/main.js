// The sample service's code: what the image's /opt/smartdc/sample holds.
console.log('sample service');
